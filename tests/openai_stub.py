"""An OpenAI-compatible chat-completions server on 127.0.0.1 that injects faults on demand.

``faults`` is a queue applied to successive requests: ``"429"`` (with ``Retry-After: 0``),
``"500"``, ``"400"``, ``"malformed"`` (200 with a body that is not a completion),
``"garbage"`` (200 with invalid JSON), ``"timeout"`` (answers after ``slow_s``). ``always``
applies one fault to every request. Answers are ``answer(prompt_text)``; with ``logprobs``
the first token's top logprobs are ``token_probs``. ``mangle``, when set, edits every
completion body (a dict) in place before it is sent: a 200 answer of the wrong shape.
"""

from __future__ import annotations

import json
import math
import threading
import time
from collections import deque
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class _Server(ThreadingHTTPServer):
    request_queue_size = 128  # socketserver's default backlog of 5 would drop concurrent connections


class OpenAIStub:
    def __init__(self, *, latency_s: float = 0.0, slow_s: float = 3.0) -> None:
        self.latency_s, self.slow_s = latency_s, slow_s
        self.faults: deque[str] = deque()
        self.always: str | None = None
        self.answer = lambda prompt: "B"
        self.token_probs: dict[str, float] | None = {"A": 0.7, " B": 0.2, "C": 0.1}
        self.mangle = None
        self.bodies: list[dict] = []
        self.headers: list[dict] = []
        self.in_flight = 0
        self.max_in_flight = 0
        self._lock = threading.Lock()
        self._server = _Server(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self._server.handle_error = lambda request, address: None  # a client that timed out hung up: fine
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/v1"

    def __enter__(self) -> OpenAIStub:
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc) -> None:
        self._server.shutdown()
        self._server.server_close()

    def _next_fault(self) -> str | None:
        with self._lock:
            return self.always or (self.faults.popleft() if self.faults else None)

    def _handler(self):
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:
                pass

            def _send(self, status: int, body: bytes, headers: dict | None = None) -> None:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                for key, value in (headers or {}).items():
                    self.send_header(key, value)
                self.end_headers()
                self.wfile.write(body)

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)))
                with stub._lock:
                    stub.bodies.append(body)
                    stub.headers.append(dict(self.headers))
                    stub.in_flight += 1
                    stub.max_in_flight = max(stub.max_in_flight, stub.in_flight)
                try:
                    time.sleep(stub.latency_s)
                    self._answer(body, stub._next_fault())
                finally:
                    with stub._lock:
                        stub.in_flight -= 1

            def _answer(self, body: dict, fault: str | None) -> None:
                if fault == "429":
                    return self._send(429, b'{"error": {"message": "rate limited"}}', {"Retry-After": "0"})
                if fault in ("500", "400"):
                    return self._send(int(fault), json.dumps({"error": {"message": f"fault {fault}"}}).encode())
                if fault == "malformed":
                    return self._send(200, b'{"unexpected": true}')
                if fault == "garbage":
                    return self._send(200, b"<html>bad gateway</html>")
                if fault == "timeout":
                    time.sleep(stub.slow_s)
                prompt = "\n".join(
                    part.get("text", "") for m in body["messages"] for part in m["content"] if isinstance(part, dict)
                )
                text = stub.answer(prompt)
                choice = {"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}
                if body.get("logprobs") and stub.token_probs is not None:
                    top = [{"token": t, "logprob": math.log(p), "bytes": None} for t, p in stub.token_probs.items()]
                    choice["logprobs"] = {"content": [{"token": top[0]["token"], "logprob": top[0]["logprob"],
                                                       "bytes": None, "top_logprobs": top}]}  # fmt: skip
                completion = {
                    "id": f"chatcmpl-{len(stub.bodies)}", "object": "chat.completion", "created": 0,
                    "model": body["model"], "choices": [choice],
                    "usage": {"prompt_tokens": 100, "completion_tokens": 2, "total_tokens": 102},
                }  # fmt: skip
                if stub.mangle is not None:
                    stub.mangle(completion)
                self._send(200, json.dumps(completion).encode())

        return Handler


if __name__ == "__main__":  # a standalone server for benchmarks: prints its URL, serves until killed
    import sys

    with OpenAIStub(latency_s=float(sys.argv[1]) if len(sys.argv) > 1 else 0.0) as server:
        print(server.url, flush=True)
        threading.Event().wait()
