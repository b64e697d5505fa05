"""A small OpenAI-compatible chat server on 127.0.0.1 for the judge's fault tests.

The reply depends on a marker in the last message: `mode:ok` (a JSON list answer with logprobs),
`mode:429`, `mode:500`, `mode:malformed` (200 with a body that is not JSON), `mode:empty` (no
choices), `mode:slow` (answers after `slow_s`), `mode:flaky` (429 once, then ok). Without a
marker it answers `default_mode`. It records the Authorization headers it saw.
"""

from __future__ import annotations

import json
import re
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class FakeOpenAI:
    def __init__(self, default_mode: str = "ok", slow_s: float = 3.0):
        self.default_mode, self.slow_s = default_mode, slow_s
        self.auth: list[str] = []
        self.requests = 0
        self._flaky_seen: set[str] = set()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                server.requests += 1
                server.auth.append(self.headers.get("Authorization", ""))
                content = body["messages"][-1]["content"]
                found = re.search(r"mode:(\w+)", content)
                mode = found.group(1) if found else server.default_mode
                if mode == "flaky":
                    mode = "ok" if content in server._flaky_seen else "429"
                    server._flaky_seen.add(content)
                if mode == "slow":
                    time.sleep(server.slow_s)
                    mode = "ok"
                if mode in ("429", "500"):
                    return self._send(int(mode), json.dumps({"error": {"message": f"fake {mode}"}}).encode())
                if mode == "malformed":
                    return self._send(200, b"{not json")
                choices = [] if mode == "empty" else [{
                    "index": 0, "finish_reason": "stop",
                    "message": {"role": "assistant", "content": "[1, 0]"},
                    "logprobs": {"content": [
                        {"token": t, "logprob": lp, "bytes": None,
                         "top_logprobs": [{"token": t, "logprob": lp, "bytes": None},
                                          {"token": alt, "logprob": -2.0, "bytes": None}]}
                        for t, alt, lp in (("[", "[", 0.0), ("1", "0", -0.1), (",", ",", 0.0), (" 0", " 1", -0.3), ("]", "]", 0.0))]},
                }]
                payload = {"id": "x", "object": "chat.completion", "created": 0, "model": body["model"],
                           "choices": choices, "usage": {"prompt_tokens": 11, "completion_tokens": 5, "total_tokens": 16}}
                self._send(200, json.dumps(payload).encode())

            def _send(self, status, data):
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):  # the client gave up (a timeout test): no
                    pass  # traceback from this thread into a later test's stderr

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()
