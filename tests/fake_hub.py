"""A small Hub-compatible HTTP server on 127.0.0.1 for `triad push` tests.

It implements the endpoints huggingface_hub uses to create a dataset repo, list its files,
upload files inline ("regular" upload mode), commit, tag, list refs, and download a file at a revision
(``hf_hub_download``), and keeps every commit's files in memory. Like the Hub, it checks a
dataset card's YAML metadata before a commit (:func:`instructiad.card_metadata.metadata_problems`).
"""

from __future__ import annotations

import base64
import hashlib
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import unquote, urlparse

import yaml

from instructiad.card_metadata import metadata_problems


class FakeHub:
    """Start with ``with FakeHub() as hub:``; ``hub.url`` is the endpoint to give HfApi."""

    def __init__(self) -> None:
        self.repos: dict[str, dict[str, bytes]] = {}
        self.tags: dict[str, dict[str, str]] = {}
        self.commits: list[dict] = []
        self.snapshots: dict[str, dict[str, bytes]] = {}  # commit oid -> the repo's files then
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

    def resolve(self, repo_id: str, revision: str) -> tuple[str, dict[str, bytes]] | None:
        """(commit oid, files) of ``repo_id`` at ``revision`` (a branch ``main``, a tag or a commit)."""
        revision = self.tags.get(repo_id, {}).get(revision, revision)
        commits = [c["oid"] for c in self.commits if c["repo"] == repo_id]
        if revision == "main":
            return (commits[-1], self.snapshots[commits[-1]]) if commits else None
        return (revision, self.snapshots[revision]) if revision in commits else None

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

            def do_HEAD(self) -> None:
                self._resolve_file("HEAD")

            def _resolve_file(self, method: str) -> None:
                """``/datasets/<owner>/<name>/resolve/<revision>/<path>``: a file's bytes at a revision."""
                path = urlparse(self.path).path
                hub.requests.append((method, unquote(path)))
                parts = path.split("/")
                repo_id, revision, name = f"{parts[2]}/{parts[3]}", unquote(parts[5]), unquote("/".join(parts[6:]))
                found = hub.resolve(repo_id, revision)
                data = found[1].get(name) if found else None
                self.send_response(200 if data is not None else 404)
                if data is None:
                    self.send_header("X-Error-Code", "RevisionNotFound" if found is None else "EntryNotFound")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                self.send_header("X-Repo-Commit", found[0])
                self.send_header("ETag", f'"{hashlib.sha1(data).hexdigest()}"')
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if method == "GET":
                    self.wfile.write(data)

            def do_GET(self) -> None:
                if urlparse(self.path).path.split("/")[1:5:3] == ["datasets", "resolve"]:
                    return self._resolve_file("GET")
                path = unquote(urlparse(self.path).path)
                hub.requests.append(("GET", path))
                parts = path.split("/")
                if path.startswith("/api/datasets/") and parts[5:] == ["refs"]:
                    repo_id = f"{parts[3]}/{parts[4]}"
                    if repo_id not in hub.repos:
                        return self._reply(404, {"error": "Repository not found"})
                    head = hub.resolve(repo_id, "main")
                    branches = [{"name": "main", "ref": "refs/heads/main", "targetCommit": head[0]}] if head else []
                    tags = [
                        {"name": tag, "ref": f"refs/tags/{tag}", "targetCommit": target}
                        for tag, target in sorted(hub.tags.get(repo_id, {}).items())
                    ]
                    return self._reply(200, {"branches": branches, "converts": [], "tags": tags})
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
                    request = json.loads(body)
                    card = request["content"]
                    hub.validated_cards.append(card)
                    problems = []
                    if request.get("repoType") == "dataset" and card.startswith("---\n"):
                        problems = metadata_problems(yaml.safe_load(card.split("---\n")[1]) or {})
                    errors = [{"message": problem} for problem in problems]
                    return self._reply(400 if errors else 200, {"errors": errors, "warnings": []})
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
                hub.snapshots[oid] = dict(repo)
                self._reply(200, {"commitUrl": f"{hub.url}/datasets/{repo_id}/commit/{oid}", "commitOid": oid})

        return Handler
