"""A tiny Hugging Face hub on 127.0.0.1, enough for huggingface_hub 2.4's downloads.

It answers what ``hf_hub_download`` and ``snapshot_download`` request (read from huggingface_hub 2.4's
``file_download.py``, ``_snapshot_download.py`` and ``hf_api.py``):

- ``HEAD /{repo}/resolve/{revision}/{path}``: the file's metadata in headers, ``X-Repo-Commit`` (the commit
  the revision points to; without it the client refuses the server), ``ETag`` (the blob name in the cache; the
  sha256 of the content, as the hub sends for LFS files) and ``Content-Length`` (the expected size);
- ``GET`` on the same URL: the bytes, with ``Range: bytes=N-`` answered by ``206 Partial Content`` and a
  ``Content-Range`` (how the client resumes after a dropped connection);
- ``GET /api/models/{repo}/revision/{revision}``: ``{"id", "sha", "siblings"}`` (``repo_info``, which
  ``snapshot_download`` uses to resolve a branch to a commit);
- ``GET /api/models/{repo}/tree/{commit}?recursive=...``: the file list (``list_repo_tree``), one page;
- errors as the hub signals them: 404 with ``X-Error-Code`` ``RepoNotFound``, ``RevisionNotFound`` or
  ``EntryNotFound`` (the last with ``X-Repo-Commit``), which the client turns into its typed exceptions.

Every request is recorded (method, path, headers) for the tests to assert on; :meth:`FakeHub.drop_after`
makes the next GET of a file send only its first N bytes and then close the connection;
``ignore_range`` makes it answer ``Range`` requests with the whole file (as some proxies and CDNs do).
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import unquote, urlsplit


@dataclass
class Request:
    """One request the server received."""

    method: str
    path: str
    headers: dict[str, str]


@dataclass
class Repo:
    """A model repository: one commit, its files, and the names that resolve to the commit."""

    files: dict[str, bytes]
    commit: str
    branches: tuple[str, ...] = ("main",)

    def resolves(self, revision: str) -> bool:
        return revision == self.commit or revision in self.branches


@dataclass
class FakeHub:
    """The server's state: repositories, recorded requests, and pending connection drops."""

    url: str = ""
    repos: dict[str, Repo] = field(default_factory=dict)
    requests: list[Request] = field(default_factory=list)
    drops: dict[tuple[str, str], int] = field(default_factory=dict)
    ignore_range: bool = False
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add_repo(self, repo_id: str, files: dict[str, bytes], commit: str | None = None) -> Repo:
        """Serve ``files`` (path in repo -> content) as ``repo_id`` at branch ``main``."""
        seed = repo_id + "\n" + "\n".join(sorted(files))
        commit = commit or hashlib.sha1(seed.encode()).hexdigest()
        repo = Repo(files=dict(files), commit=commit)
        self.repos[repo_id] = repo
        return repo

    def drop_after(self, repo_id: str, path: str, size: int) -> None:
        """Make the next full GET of ``path`` send ``size`` bytes of it, then close the connection."""
        self.drops[(repo_id, path)] = size

    def record(self, request: Request) -> None:
        with self.lock:
            self.requests.append(request)

    def gets(self, suffix: str) -> list[Request]:
        """The GET requests whose path ends with ``suffix``."""
        return [r for r in self.requests if r.method == "GET" and r.path.endswith(suffix)]


def _etag(content: bytes) -> str:
    return hashlib.sha256(content).hexdigest()


def _make_handler(hub: FakeHub) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: object) -> None:  # quiet
            pass

        def do_HEAD(self) -> None:
            self._handle(head=True)

        def do_GET(self) -> None:
            self._handle(head=False)

        # -- plumbing --------------------------------------------------------------------------------------

        def _send(self, status: int, body: bytes = b"", headers: dict[str, str] | None = None) -> None:
            self.send_response(status)
            for key, value in (headers or {}).items():
                self.send_header(key, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

        def _json(self, payload: object) -> None:
            self._send(200, json.dumps(payload).encode(), {"Content-Type": "application/json"})

        def _error(self, code: str, commit: str | None = None) -> None:
            headers = {"X-Error-Code": code, "X-Error-Message": code, "Content-Type": "application/json"}
            if commit:
                headers["X-Repo-Commit"] = commit
            self._send(404, json.dumps({"error": code}).encode(), headers)

        def _handle(self, head: bool) -> None:
            hub.record(Request(self.command, self.path, {k: v for k, v in self.headers.items()}))
            parts = [unquote(p) for p in urlsplit(self.path).path.strip("/").split("/")]
            if len(parts) >= 6 and parts[:2] == ["api", "models"]:
                self._api(f"{parts[2]}/{parts[3]}", parts[4], parts[5])
            elif len(parts) >= 5 and parts[2] == "resolve":
                self._resolve(f"{parts[0]}/{parts[1]}", parts[3], "/".join(parts[4:]), head)
            else:
                self._send(404, b"not found")

        def _repo(self, repo_id: str, revision: str) -> Repo | None:
            repo = hub.repos.get(repo_id)
            if repo is None:
                self._error("RepoNotFound")
                return None
            if not repo.resolves(revision):
                self._error("RevisionNotFound")
                return None
            return repo

        def _api(self, repo_id: str, kind: str, revision: str) -> None:
            repo = self._repo(repo_id, revision)
            if repo is None:
                return
            if kind == "revision":
                siblings = [{"rfilename": name} for name in sorted(repo.files)]
                self._json({"id": repo_id, "sha": repo.commit, "siblings": siblings, "private": False})
            elif kind == "tree":
                entries = [
                    {"type": "file", "path": name, "size": len(data), "oid": hashlib.sha1(data).hexdigest()}
                    for name, data in sorted(repo.files.items())
                ]
                self._json(entries)
            else:
                self._send(404, b"not found")

        def _resolve(self, repo_id: str, revision: str, path: str, head: bool) -> None:
            repo = self._repo(repo_id, revision)
            if repo is None:
                return
            content = repo.files.get(path)
            if content is None:
                self._error("EntryNotFound", commit=repo.commit)
                return
            headers = {
                "X-Repo-Commit": repo.commit,
                "ETag": f'"{_etag(content)}"',
                "Accept-Ranges": "bytes",
                "Content-Type": "application/octet-stream",
            }
            start = 0
            status = 200
            wanted = self.headers.get("Range")
            resumable = wanted and not head and not hub.ignore_range
            if resumable and wanted.startswith("bytes=") and wanted.endswith("-"):
                start = int(wanted[len("bytes=") : -1])
                status = 206
                headers["Content-Range"] = f"bytes {start}-{len(content) - 1}/{len(content)}"
            body = content[start:]
            drop = None if head or status == 206 else hub.drops.pop((repo_id, path), None)
            if drop is None:
                self._send(status, body, headers)
                return
            # announce the whole file, send part of it, then hang up: the client sees a broken transfer
            self.send_response(status)
            for key, value in headers.items():
                self.send_header(key, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body[:drop])
            self.wfile.flush()
            self.close_connection = True

    return Handler


@contextmanager
def serve_hub() -> Iterator[FakeHub]:
    """Run a :class:`FakeHub` on ``127.0.0.1`` (a free port) in a thread; ``hub.url`` is its endpoint."""
    hub = FakeHub()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _make_handler(hub))
    server.daemon_threads = True
    hub.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), name="fake-hub", daemon=True)
    thread.start()
    try:
        yield hub
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
