"""The relay benchmark (issue 10): what Lhama adds between a paced model server and the
browser, at 1 to 200 chats at once, next to the model server read directly (the limit).

    python -m bench relay                     # `make bench`: the sweep below
    python -m bench.relay --quick             # `make bench-quick` (CI): 1, 10, 50 chats, < 2 min
    python -m bench.relay --base <commit>     # the same sweep for an older commit, interleaved

Processes: the paced upstream (bench/paced_upstream.py: 50 ms to the first token, 20 ms
between tokens, 200 tokens of a known text, each token's send time in a side log), one
web process (Daphne as shipped, or the same ASGI app under Uvicorn), and the load client
(bench/load_client.py), each on its own. Set-ups: the embedded defaults (SQLite, the
in-process layer and run logs) and, with LHAMA_BENCH_DATABASE_URL and
LHAMA_BENCH_REDIS_URL, PostgreSQL + Redis (a scratch database: it is migrated and
filled). The demo campaigns are loaded, so ad decisions really run; "ads off" is the
same web process with every conversation's ads dismissed.

Per level: added time to first token (the client's first token minus the upstream's own
time to it) split into "until the upstream had the request" and "the rest", per-token
lag (arrival at the client minus the upstream's send time, one clock), lost, duplicated
and reordered tokens, failed answers, ads decided in time, the web process's CPU per
relayed token (the whole burst: admission, relay, saving, ads) and its memory, and the
memory per open idle socket. JSON in bench/results/relay.json (quick: relay_quick.json)
and a PNG of the percentiles. The exit status is 1 when any token was lost, duplicated
or reordered (what CI checks); timings are reported, never asserted.
"""

from __future__ import annotations

import argparse
import difflib
import json
import os
import platform
import socket
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from bench.paced_upstream import expected_words

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
RESULTS = HERE / "results"
TTFT_S, INTERVAL_S = 0.05, 0.02
LEVELS = (1, 10, 50, 100, 200)
QUICK_LEVELS = (1, 10, 50)


# --- processes ---------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_http(url: str, process: subprocess.Popen, timeout: float = 90) -> None:
    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{process.args} exited with {process.returncode}")
        try:
            httpx.get(url, timeout=1)
            return
        except httpx.HTTPError:
            time.sleep(0.2)
    raise RuntimeError(f"{url} did not answer")


def _cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def _web_env(tmp: Path, setup: str, database_url: str, redis_url: str) -> dict:
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "LHAMA_VAR_DIR": str(tmp),
        "SQLITE_PATH": str(tmp / "bench.sqlite3"),
        "DATABASE_URL": database_url if setup == "pg_redis" else "",
        "REDIS_URL": redis_url if setup == "pg_redis" else "",
        "REDIS_PREFIX": f"lhama-bench-{tmp.name.split('-')[0]}",
        "CELERY_BROKER_URL": "memory://",
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "DEBUG": "false",
        "LOG_LEVEL": "WARNING",
        "LLM_FIRST_TOKEN_TIMEOUT_S": "120",
        "LLM_CONNECT_TIMEOUT_S": "30",
        # Every simulated guest is one address: lift the per-person and per-network limits.
        "BILLING_GUEST_REQUESTS_PER_MINUTE": "1000000",
        "BILLING_GUEST_DAILY_TOKENS": "1000000000",
        "BILLING_GUEST_CONCURRENT_RUNS": "10",
        "BILLING_GUEST_SESSIONS_PER_ADDRESS_HOUR": "1000000",
        "BILLING_GUEST_ADDRESS_REQUESTS_PER_MINUTE": "1000000",
        "BILLING_GUEST_ADDRESS_CONCURRENT_RUNS": "100000",
        "BILLING_GUEST_ADDRESS_DAILY_TOKENS": "1000000000000",
        "BILLING_GUEST_TOTAL_DAILY_TOKENS": "1000000000000",
        "ADS_GUEST_SESSIONS_PER_IP_HOUR": "1000000",
    }
    return env


_SEED = """
import json, sys, django
django.setup()
from django.core.management import call_command
from django.contrib.sessions.backends.db import SessionStore
from assistant.models import ModelTier
call_command("migrate", verbosity=0)
call_command("createcachetable", verbosity=0)
call_command("demo_data", stdout=open("/dev/null", "w"))
ModelTier.objects.update_or_create(slug="llama-3.1-8b", defaults=dict(
    display_name="Llama 3.1 8B", served_model_name="bench", base_url=sys.argv[1], is_active=True,
    context_length=8192, max_output_tokens=1024, tokenizer="llama.cpp", api_key_env=""))
from ads.models import Campaign
# Every round asks the same guests again: no frequency cap may hide whether a decision came in time.
Campaign.objects.update(frequency_cap_hour=None, frequency_cap_day=None)
keys = []
for _ in range(int(sys.argv[2])):
    store = SessionStore(); store.create(); keys.append(store.session_key)
token = ""
try:  # the OpenAI-compatible API, where this tree has it: a Free account's key, its limits lifted
    from assistant.api.keys import api_key_create
except ImportError:
    pass
else:
    from accounts.models import User
    from billing.models import Plan
    Plan.objects.filter(slug="free").update(
        api_requests_per_minute=10**6, api_tokens_per_minute=10**9, api_tokens_per_day=2 * 10**9,
        api_concurrent_streams=10000, daily_tokens=2 * 10**9, requests_per_minute=10**6, concurrent_runs=10000)
    user = User.objects.create_user(email="bench@example.com", password=None)
    token = api_key_create(user=user, name="bench").token
print(json.dumps({"sessions": keys, "api_key": token}))
"""

def _django(tree: Path, env: dict, code: str, *args: str) -> str:
    out = subprocess.run([sys.executable, "-c", code, *args], cwd=tree, env=env, capture_output=True, text=True,
                         timeout=600, check=False)
    if out.returncode != 0:
        raise RuntimeError(out.stderr[-3000:])
    return out.stdout


class Web:
    """One web process of one tree and set-up, with its own database and sessions."""

    def __init__(self, *, tree: Path, label: str, setup: str, server: str, upstream_url: str, sessions: int,
                 database_url: str, redis_url: str, tmp: Path) -> None:
        self.tree, self.label, self.setup, self.server = tree, label, setup, server
        self.tmp = tmp / f"{label}-{setup}-{server}"
        self.tmp.mkdir(parents=True, exist_ok=True)
        self.env = _web_env(self.tmp, setup, database_url, redis_url)
        seeded = json.loads(_django(tree, self.env, _SEED, upstream_url, str(sessions)).splitlines()[-1])
        self.keys: list[str] = seeded["sessions"]
        self.api_key: str = seeded["api_key"]
        self.conversations: list[str | None] = [None] * sessions
        self.port = _free_port()
        if server == "daphne":
            command = [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(self.port), "config.asgi:application"]
        else:
            command = [sys.executable, "-m", "uvicorn", "config.asgi:application", "--host", "127.0.0.1", "--port",
                       str(self.port), "--no-access-log", "--ws", "websockets", "--lifespan", "off"]
        self.process = subprocess.Popen(command, cwd=tree, env=self.env, stdout=subprocess.DEVNULL,
                                        stderr=(self.tmp / "web.log").open("w"))
        _wait_http(f"http://127.0.0.1:{self.port}/healthz", self.process)

    def ads(self, state: str) -> None:
        """Dismiss (or restore) ads in every conversation, in plain SQL: a Django process per
        round cost seconds on this machine."""
        sql = f"UPDATE assistant_conversation SET ads_dismissed = {'true' if state == 'off' else 'false'}"
        if self.setup == "pg_redis":
            import psycopg

            with psycopg.connect(self.env["DATABASE_URL"], autocommit=True) as conn:
                conn.execute(sql)
        else:
            import sqlite3

            with sqlite3.connect(self.env["SQLITE_PATH"], timeout=30) as conn:
                conn.execute(sql)

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(15)
        except subprocess.TimeoutExpired:
            self.process.kill()


def _client(args: list[str], pid: int | None) -> tuple[list[dict], dict]:
    """Run the load client; sample the web process (pid) when its sockets are open and after."""
    with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as f:
        out = f.name
    client = subprocess.Popen([sys.executable, "-m", "bench.load_client", *args, "--out", out], cwd=ROOT,
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    line = client.stdout.readline()
    if line.strip() != "READY":
        client.kill()
        raise RuntimeError(f"load client: {line!r}")
    sample: dict = {}
    if pid:
        time.sleep(0.3)
        sample = {"rss_open_mb": _rss_mb(pid), "cpu_before": _cpu_s(pid)}
    client.stdin.write("go\n")
    client.stdin.flush()
    client.wait(900)
    if pid:
        sample |= {"cpu_s": _cpu_s(pid) - sample.pop("cpu_before"), "rss_after_mb": _rss_mb(pid)}
    records = json.loads(Path(out).read_text())
    Path(out).unlink()
    return records, sample


def _chats_file(web: Web, n: int) -> str:
    path = web.tmp / f"chats-{n}.json"
    path.write_text(json.dumps([{"session": k, "conversation": c}
                                for k, c in zip(web.keys[:n], web.conversations[:n], strict=True)]))
    return str(path)


def _ws_round(web: Web, n: int) -> tuple[list[dict], dict]:
    records, sample = _client(["ws", "--url", f"ws://127.0.0.1:{web.port}", "--chats", _chats_file(web, n)],
                              web.process.pid)
    for i, record in enumerate(records):
        if record.get("conversation"):
            web.conversations[i] = record["conversation"]
    return records, sample


# --- figures -----------------------------------------------------------------------------


def _pct(values: list[float], q: float) -> float | None:
    if not values:
        return None
    values = sorted(values)
    return round(values[min(len(values) - 1, int(q * len(values)))], 2)


def _side_log(path: Path) -> dict[str, dict]:
    entries = {}
    if path.exists():
        for line in path.read_text().splitlines():
            entry = json.loads(line)
            entries[entry["chat"]] = entry
    return entries


def figures(records: list[dict], side: dict[str, dict], sample: dict) -> dict:
    added, until_upstream, rest, lags = [], [], [], []
    lost = duplicated = reordered = failed = ads = tokens = 0
    for record in records:
        entry = side.get(record["chat"])
        if record.get("end") != "done" or entry is None:
            failed += 1
            continue
        ads += bool(record.get("ad"))
        words = [(at, word) for at, _frame_seq, text in record["frames"] for word in text.split()]
        got = [word for _at, word in words]
        expected = expected_words(len(entry["sent_us"]))
        tokens += len(got)
        if got != expected:  # what went wrong, word by word
            for op, i1, i2, j1, j2 in difflib.SequenceMatcher(a=expected, b=got, autojunk=False).get_opcodes():
                if op == "delete":
                    lost += i2 - i1
                elif op == "insert":
                    duplicated += j2 - j1
                elif op == "replace":
                    reordered += max(i2 - i1, j2 - j1)
        # The k-th word that arrived is token k (exactly so when nothing went wrong).
        lags += [(at - sent) / 1000 for (at, _word), sent in zip(words, entry["sent_us"], strict=False)]
        if words and entry["sent_us"]:
            first_at = words[0][0]
            until_upstream.append((entry["received_us"] - record["sent_us"]) / 1000)
            rest.append((first_at - entry["sent_us"][0]) / 1000)
            added.append(until_upstream[-1] + rest[-1])
    result = {
        "chats": len(records),
        "failed": failed,
        "lost_tokens": lost,
        "duplicated_tokens": duplicated,
        "reordered_tokens": reordered,
        "tokens": tokens,
        "added_ttft_ms": {"p50": _pct(added, 0.5), "p99": _pct(added, 0.99)},
        "until_upstream_ms": {"p50": _pct(until_upstream, 0.5), "p99": _pct(until_upstream, 0.99)},
        "rest_ms": {"p50": _pct(rest, 0.5), "p99": _pct(rest, 0.99)},
        "token_lag_ms": {"p50": _pct(lags, 0.5), "p99": _pct(lags, 0.99)},
        "ads_in_time": round(ads / max(1, len(records) - failed), 3),
    }
    if added and result["added_ttft_ms"]["p50"]:
        result["burst_p99_over_p50"] = round(result["added_ttft_ms"]["p99"] / max(result["added_ttft_ms"]["p50"], 0.01), 2)
    if "cpu_s" in sample:
        result["web_cpu_us_per_token"] = round(sample["cpu_s"] * 1e6 / max(tokens, 1), 1)
        result["web_cpu_s"] = round(sample["cpu_s"], 2)
        result["web_rss_mb"] = round(sample["rss_after_mb"], 1)
    return result


def _plot(result: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.5))
    series: dict[str, list] = {}
    for run in result["runs"]:
        if run["ads"] not in ("on", "-"):
            continue
        series.setdefault(f"{run['tree']} {run['setup']} {run['server']}", []).append(run)
    series["limit (upstream read directly)"] = result["limit"]
    for name, runs in series.items():
        runs = sorted(runs, key=lambda r: r["chats"])
        xs = [r["chats"] for r in runs]
        for axis, key in ((left, "added_ttft_ms"), (right, "token_lag_ms")):
            axis.plot(xs, [r[key]["p99"] for r in runs], marker="o", label=f"{name} p99")
            axis.plot(xs, [r[key]["p50"] for r in runs], marker=".", linestyle="--", label=f"{name} p50")
    for axis, title in ((left, "added time to first token (ms)"), (right, "per-token lag (ms)")):
        axis.set_xscale("log")
        axis.set_yscale("log")
        axis.set_xlabel("concurrent chats")
        axis.set_title(title)
        axis.grid(True, which="both", alpha=0.3)
    left.legend(fontsize=6)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


# --- the sweep ---------------------------------------------------------------------------


def _base_tree(ref: str) -> Path:
    path = Path(tempfile.gettempdir()) / f"lhama-bench-base-{ref[:12]}"
    if not path.exists():
        subprocess.run(["git", "worktree", "add", "--detach", str(path), ref], cwd=ROOT, check=True,
                       capture_output=True)
    return path


def sweep(*, quick: bool, base: str | None, servers: list[str], tokens: int, levels: tuple[int, ...],
          keep: bool = False, partial: Path | None = None, only_setups: tuple[str, ...] = ()) -> dict:
    database_url = os.environ.get("LHAMA_BENCH_DATABASE_URL", "")
    redis_url = os.environ.get("LHAMA_BENCH_REDIS_URL", "")
    setups = ["embedded"] + (["pg_redis"] if database_url and redis_url and not quick else [])
    if only_setups:
        setups = [setup for setup in setups if setup in only_setups]
    trees = [("new", ROOT)] + ([("base", _base_tree(base))] if base else [])
    result: dict = {
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                    "load_avg_1m_start": round(os.getloadavg()[0], 2)},
        "upstream": {"ttft_s": TTFT_S, "interval_s": INTERVAL_S, "tokens": tokens},
        "base": base, "levels": list(levels), "runs": [], "limit": [], "idle_socket_kb": {},
    }
    with tempfile.TemporaryDirectory(prefix="lhama-relay-", delete=not keep) as tmpdir:
        tmp = Path(tmpdir)
        if keep:
            print(f"   logs and databases kept in {tmp}", flush=True)
        side_path = tmp / "side.jsonl"
        port = _free_port()
        upstream = subprocess.Popen([sys.executable, "-m", "bench.paced_upstream", "--port", str(port), "--ttft",
                                     str(TTFT_S), "--interval", str(INTERVAL_S), "--tokens", str(tokens),
                                     "--log", str(side_path)], cwd=ROOT)
        upstream_url = f"http://127.0.0.1:{port}/v1"
        try:
            _wait_http(f"{upstream_url}/models", upstream)
            for setup in setups:
                if setup == "pg_redis":
                    _reset_scratch(database_url, redis_url, [label for label, _ in trees])
                for server in servers:
                    webs = []
                    for label, tree in trees:
                        url = _scratch_url(database_url, label) if setup == "pg_redis" else ""
                        webs.append(Web(tree=tree, label=label, setup=setup, server=server,
                                        upstream_url=upstream_url, sessions=max(levels), database_url=url,
                                        redis_url=redis_url, tmp=tmp))
                    try:
                        for web in webs:  # warm-up: each guest's first message makes the conversation
                            rss_before = _rss_mb(web.process.pid)
                            _records, sample = _ws_round(web, max(levels))
                            result["idle_socket_kb"][f"{web.label} {setup} {server}"] = round(
                                (sample["rss_open_mb"] - rss_before) * 1024 / max(levels), 1)
                        time.sleep(2)  # the titles
                        for n in levels:
                            for ads in ("on", "off") if n in (1, 10, 50, 100) and not quick else ("on",):
                                for web in webs:  # interleaved: the trees side by side at each level
                                    web.ads(ads)
                                    records, sample = _ws_round(web, n)
                                    run = {"tree": web.label, "setup": setup, "server": server, "ads": ads,
                                           **figures(records, _side_log(side_path), sample)}
                                    result["runs"].append(run)
                                    _print(run)
                                    _save_partial(partial, result)
                            for web in webs:  # the OpenAI-compatible API (SSE), where the tree has it
                                if web.api_key and server == "daphne":
                                    records, sample = _client(["api", "--url", f"http://127.0.0.1:{web.port}",
                                                               "--key", web.api_key, "--count", str(n)],
                                                              web.process.pid)
                                    run = {"tree": web.label, "setup": setup, "server": "api-sse", "ads": "-",
                                           **figures(records, _side_log(side_path), sample)}
                                    result["runs"].append(run)
                                    _print(run)
                    finally:
                        for web in webs:
                            web.stop()
            for n in levels:
                records, sample = _client(["direct", "--url", upstream_url, "--count", str(n)], None)
                run = {"tree": "limit", "setup": "-", "server": "-", "ads": "-",
                       **figures(records, _side_log(side_path), sample)}
                result["limit"].append(run)
                _print(run)
        finally:
            upstream.terminate()
            upstream.wait(10)
    result["machine"]["load_avg_1m_end"] = round(os.getloadavg()[0], 2)
    return result


def _save_partial(path: Path | None, result: dict) -> None:
    """What is measured so far (a long sweep cut short keeps its figures)."""
    if path is not None:
        path.write_text(json.dumps(result, indent=1) + "\n")


def _scratch_url(database_url: str, label: str) -> str:
    return f"{database_url}_{label}"


def _reset_scratch(database_url: str, redis_url: str, labels: list[str]) -> None:
    import psycopg
    import redis

    admin, _, name = database_url.rpartition("/")
    with psycopg.connect(f"{admin}/postgres", autocommit=True) as conn:
        for label in labels:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}_{label}" WITH (FORCE)')
            conn.execute(f'CREATE DATABASE "{name}_{label}"')
    client = redis.Redis.from_url(redis_url)  # only the benchmark's own keys: the database may be shared
    for label in labels:
        for key in client.scan_iter(match=f"lhama-bench-{label}:*", count=1000):
            client.delete(key)


def _print(run: dict) -> None:
    print(f"   {run['tree']:>5} {run['setup']:>8} {run['server']:>6} ads {run['ads']:>3} {run['chats']:>4} chats: "
          f"added TTFT p50/p99 {run['added_ttft_ms']['p50']}/{run['added_ttft_ms']['p99']} ms "
          f"(until upstream p99 {run['until_upstream_ms']['p99']}), lag p50/p99 "
          f"{run['token_lag_ms']['p50']}/{run['token_lag_ms']['p99']} ms, "
          f"CPU {run.get('web_cpu_us_per_token', '-')} µs/token, ads {run['ads_in_time']:.0%}, "
          f"failed {run['failed']}, lost/dup/reordered {run['lost_tokens']}/{run['duplicated_tokens']}/"
          f"{run['reordered_tokens']}", flush=True)


def report(result: dict) -> str:
    """The results as a Markdown table (docs/performance.md)."""
    head = ("| tree | set-up | server | ads | chats | added TTFT p50 / p99 ms | until upstream p99 | lag p50 / p99 ms "
            "| CPU µs/token | ads in time | failed | lost/dup/reord |")
    rows = [head, "|" + "---|" * 12]
    for run in sorted(result["runs"] + result["limit"], key=lambda r: (r["chats"], r["setup"], r["server"], r["ads"],
                                                                        r["tree"])):
        rows.append(
            f"| {run['tree']} | {run['setup']} | {run['server']} | {run['ads']} | {run['chats']} "
            f"| {run['added_ttft_ms']['p50']} / {run['added_ttft_ms']['p99']} | {run['until_upstream_ms']['p99']} "
            f"| {run['token_lag_ms']['p50']} / {run['token_lag_ms']['p99']} | {run.get('web_cpu_us_per_token', '–')} "
            f"| {run['ads_in_time']:.0%} | {run['failed']} "
            f"| {run['lost_tokens']}/{run['duplicated_tokens']}/{run['reordered_tokens']} |"
        )
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(prog="python -m bench.relay")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--base", help="an older commit to measure side by side")
    parser.add_argument("--servers", default="daphne,uvicorn")
    parser.add_argument("--tokens", type=int)
    parser.add_argument("--levels", help="comma-separated numbers of chats (default: 1,10,50,100,200; quick: 1,10,50)")
    parser.add_argument("--keep", action="store_true", help="keep the web processes' logs and databases")
    parser.add_argument("--setups", default="", help="only these set-ups: embedded, pg_redis (comma-separated)")
    parser.add_argument("--name", help="the results' file name (default: relay, quick: relay_quick)")
    parser.add_argument("--report", help="print a results file as a Markdown table, and nothing else")
    args = parser.parse_args(argv if argv is not None else [])
    if args.report:
        result = json.loads(Path(args.report).read_text())
        print(report(result))
        return {**result, "ok": True}
    servers = ["daphne"] if args.quick else args.servers.split(",")
    tokens = args.tokens or (50 if args.quick else 200)
    levels = tuple(int(n) for n in args.levels.split(",")) if args.levels else (QUICK_LEVELS if args.quick else LEVELS)
    RESULTS.mkdir(exist_ok=True)
    name = args.name or ("relay_quick" if args.quick else "relay")
    result = sweep(quick=args.quick, base=args.base, servers=servers, tokens=tokens, levels=levels, keep=args.keep,
                   partial=RESULTS / f"{name}.partial.json",
                   only_setups=tuple(filter(None, args.setups.split(","))))
    (RESULTS / f"{name}.partial.json").unlink(missing_ok=True)
    (RESULTS / f"{name}.json").write_text(json.dumps(result, indent=1) + "\n")
    try:
        _plot(result, RESULTS / f"{name}.png")
    except ImportError:
        print("   (matplotlib is not installed: no PNG)")
    # A failed answer loses its tokens too.
    broken = [r for r in result["runs"]
              if r["failed"] or r["lost_tokens"] or r["duplicated_tokens"] or r["reordered_tokens"]]
    result["ok"] = not broken
    if broken:
        print(f"   ANSWERS FAILED OR TOKENS LOST, DUPLICATED OR REORDERED in {len(broken)} runs", flush=True)
    return result


if __name__ == "__main__":
    sys.exit(0 if main(sys.argv[1:])["ok"] else 1)
