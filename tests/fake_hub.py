"""A small Hub-compatible HTTP server on 127.0.0.1 for `triad push` tests.

It implements the endpoints huggingface_hub uses to create a dataset repo, list its files,
upload files inline ("regular" upload mode), commit, and tag, and keeps the repo in memory.
"""

from __future__ import annotations

import base64
import hashlib
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import unquote, urlparse


class FakeHub:
    """Start with ``with FakeHub() as hub:``; ``hub.url`` is the endpoint to give HfApi."""

    def __init__(self) -> None:
        self.repos: dict[str, dict[str, bytes]] = {}
        self.tags: dict[str, dict[str, str]] = {}
        self.commits: list[dict] = []
        self.requests: list[tuple[str, str]] = []
        self.validated_cards: list[str] = []
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"

    def __enter__(self) -> FakeHub:
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc) -> None:
        self._server.shutdown()
        self._server.server_close()

    def _handler(self):
        hub = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:
                pass

            def _reply(self, status: int, payload: object) -> None:
                body = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def _body(self) -> bytes:
                return self.rfile.read(int(self.headers.get("Content-Length") or 0))

            def do_GET(self) -> None:
                path = unquote(urlparse(self.path).path)
                hub.requests.append(("GET", path))
                parts = path.split("/")
                # /api/datasets/<owner>/<name>/tree/<revision>[/<path>]
                if path.startswith("/api/datasets/") and parts[5] == "tree":
                    repo = hub.repos.get(f"{parts[3]}/{parts[4]}")
                    if repo is None:
                        return self._reply(404, {"error": "Repository not found"})
                    entries = [
                        {"type": "file", "path": name, "size": len(data), "oid": hashlib.sha1(data).hexdigest()}
                        for name, data in sorted(repo.items())
                    ]
                    return self._reply(200, entries)
                self._reply(404, {"error": f"not implemented: GET {path}"})

            def do_POST(self) -> None:
                path = unquote(urlparse(self.path).path)
                hub.requests.append(("POST", path))
                body = self._body()
                if path == "/api/repos/create":
                    request = json.loads(body)
                    repo_id = f"{request['organization']}/{request['name']}"
                    hub.repos.setdefault(repo_id, {})
                    return self._reply(200, {"url": f"{hub.url}/datasets/{repo_id}"})
                if path == "/api/validate-yaml":  # the card's YAML is checked before a commit
                    card = json.loads(body)["content"]
                    hub.validated_cards.append(card)
                    return self._reply(200, {"errors": [], "warnings": []})
                parts = path.split("/")
                repo_id = f"{parts[3]}/{parts[4]}" if len(parts) > 5 else ""
                if repo_id not in hub.repos:
                    return self._reply(404, {"error": "Repository not found"})
                action = parts[5]
                if action == "preupload":
                    files = json.loads(body)["files"]
                    modes = [{"path": f["path"], "uploadMode": "regular", "shouldIgnore": False} for f in files]
                    return self._reply(200, {"files": modes, "commitOid": self._head(repo_id)})
                if action == "commit":
                    return self._commit(repo_id, body)
                if action == "tag":
                    tag = json.loads(body)["tag"]
                    if tag in hub.tags.setdefault(repo_id, {}):
                        return self._reply(409, {"error": f"Tag {tag} already exists"})
                    hub.tags[repo_id][tag] = "/".join(parts[6:])
                    return self._reply(200, {})
                self._reply(404, {"error": f"not implemented: POST {path}"})

            def _head(self, repo_id: str) -> str:
                commits = [c for c in hub.commits if c["repo"] == repo_id]
                return commits[-1]["oid"] if commits else "0" * 40

            def _commit(self, repo_id: str, body: bytes) -> None:
                repo = hub.repos[repo_id]
                summary = ""
                for line in body.decode().splitlines():
                    item = json.loads(line)
                    value = item["value"]
                    if item["key"] == "header":
                        summary = value["summary"]
                    elif item["key"] == "file":
                        repo[value["path"]] = base64.b64decode(value["content"])
                    elif item["key"] in ("deletedFile", "deletedFolder"):
                        prefix = value["path"].rstrip("/")
                        for name in [n for n in repo if n == prefix or n.startswith(prefix + "/")]:
                            del repo[name]
                    else:
                        return self._reply(400, {"error": f"unsupported commit operation {item['key']}"})
                oid = hashlib.sha1(f"{repo_id}{len(hub.commits)}{summary}".encode()).hexdigest()
                hub.commits.append({"repo": repo_id, "oid": oid, "summary": summary, "files": sorted(repo)})
                self._reply(200, {"commitUrl": f"{hub.url}/datasets/{repo_id}/commit/{oid}", "commitOid": oid})

        return Handler
