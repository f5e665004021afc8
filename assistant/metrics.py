"""The assistant's Prometheus metrics (served by config/metrics.py at /metrics).

Live ones are updated where the thing happens (runs.py, generation.py, consumers.py) with
one call each; in multiprocess mode (PROMETHEUS_MULTIPROC_DIR) every web process and
Celery worker writes its own file and /metrics adds them up. Run outcomes are counted
live too, including those the reaper marks interrupted (in the worker).

Gauges of what is open now carry a `pid` label in multiprocess mode ("liveall"): one
series per live process, so a dashboard shows active runs and sockets per process.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

# Seconds; the first token of a loaded 405B takes seconds, a warm 8B tens of milliseconds.
FIRST_TOKEN_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2, 4, 8, 15, 30, 60)
BETWEEN_TOKENS_BUCKETS = (0.005, 0.01, 0.02, 0.03, 0.05, 0.075, 0.1, 0.15, 0.25, 0.5, 1)

runs_active = Gauge(
    "lhama_runs_active", "Generation runs owned by this process now.", multiprocess_mode="liveall"
)
sockets_open = Gauge(
    "lhama_sockets_open", "Chat WebSockets open on this process now.", multiprocess_mode="liveall"
)
time_to_first_token = Histogram(
    "lhama_time_to_first_token_seconds",
    "From the run's start to its first token, per tier.",
    ["tier"],
    buckets=FIRST_TOKEN_BUCKETS,
)
time_between_tokens = Histogram(
    "lhama_time_between_tokens_seconds",
    "Mean time between two tokens of one answer (observed once per answer), per tier.",
    ["tier"],
    buckets=BETWEEN_TOKENS_BUCKETS,
)
completion_tokens = Counter(
    "lhama_completion_tokens", "Tokens generated, per tier (rate() of it is tokens per second).", ["tier"]
)
upstream_errors = Counter(
    "lhama_upstream_errors", "Runs ended by an inference server failure, per tier and kind.", ["tier", "kind"]
)
run_outcomes = Counter(
    "lhama_run_outcomes", "Runs ended, per outcome (complete, stopped, error, interrupted).", ["status"]
)
runs_drained = Counter(
    "lhama_runs_drained", "Runs a draining process finished (complete) or saved as interrupted.", ["result"]
)
