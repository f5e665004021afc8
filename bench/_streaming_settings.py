"""Settings for the streaming benchmark's web process: the project's settings, with the
coalescing window taken from LHAMA_BENCH_COALESCE_S so both modes can be measured."""

import os

from config.settings import *  # noqa: F403

ASSISTANT_COALESCE_S = float(os.environ.get("LHAMA_BENCH_COALESCE_S", "0.04"))
