"""A small in-memory server that speaks the Hugging Face Hub HTTP protocol.

It implements the part of the protocol that the real `huggingface_hub` client
(tested against 2.4) uses to create repositories, commit files, tag revisions
and download snapshots, so tests can exercise `kerassl.zoo` end to end without
the network and without mocking any kerassl function. Standard library only.

What the client expects, learned from its source:
- Writes: `POST /api/repos/create`, `POST /api/validate-yaml`,
  `POST /api/models/{repo}/preupload/{rev}` (we always answer
  `uploadMode: "regular"`, so file bytes travel base64-encoded inside the NDJSON
  body of `POST /api/models/{repo}/commit/{rev}`: no LFS, no Xet),
  `POST .../tag/{rev}`, `POST .../branch/{name}`.
- Reads: `GET /api/models/{repo}[/revision/{rev}]` (needs `sha`),
  `GET .../tree/{rev}[/{path}]?recursive=...`, `GET .../refs`,
  `HEAD`/`GET /{repo}/resolve/{rev}/{file}` with `X-Repo-Commit`, `ETag` and
  `Content-Length` (and `Range` for resumed downloads).
- Errors carry `X-Error-Code` (`RepoNotFound`, `RevisionNotFound`,
  `EntryNotFound`) so the client raises its own exception types; a private repo
  read without a valid token answers 401 like the real Hub.
- Version 2.x also asks `GET /api/agent-harnesses` once a day.

Every commit gets a new SHA-1 and keeps a full snapshot of the files, so
branches, tags and pinned commit hashes all resolve to real history.

Example:
    hub = LocalHub(tokens={"hf_secret": "alice"}).start()
    # point HF_ENDPOINT at hub.url *before* importing huggingface_hub
    hub.stop()
"""

import base64
import datetime
import hashlib
import http.server
import json
import socket
import threading
import urllib.parse

import yaml

GITATTRIBUTES = b"*.h5 filter=lfs diff=lfs merge=lfs -text\n*.keras filter=lfs diff=lfs merge=lfs -text\n"


def git_blob_sha1(content):
    """The git object id of a blob, which the Hub reports as a regular file's oid."""
    return hashlib.sha1(b"blob %d\0" % len(content) + content).hexdigest()


DROP_MARKER = "X-Local-Hub-Drop"  # internal: never sent


class ConnectionDropped(Exception):
    """Raised inside a route to close the connection without an answer."""


class HubError(Exception):
    def __init__(self, status, code=None, message="", headers=None, body=None):
        super().__init__(message)
        self.status, self.code, self.message = status, code, message
        self.headers = headers or {}
        self.body = body or {}


class Repo:
    """One model repository: commits are full snapshots, refs point at commits."""

    def __init__(self, repo_id, private, owner):
        self.repo_id, self.private, self.owner = repo_id, private, owner
        self.created_at = _now()
        self.commits = {}  # sha -> {"files": {path: bytes}, "parent", "message", "date"}
        self.branches = {}
        self.tags = {}
        self.pulls = {}  # "N" -> sha: the heads of refs/pr/N (pull requests, as the Hub keeps them)

    def commit(self, files, message, branch="main"):
        refs = self.branches
        if branch.startswith("refs/pr/"):
            refs, branch = self.pulls, branch[len("refs/pr/") :]
        parent = refs.get(branch)
        digest = hashlib.sha1()
        digest.update(f"{self.repo_id}\0{parent}\0{message}\0{len(self.commits)}".encode())
        for path in sorted(files):
            digest.update(path.encode() + b"\0" + git_blob_sha1(files[path]).encode())
        sha = digest.hexdigest()
        self.commits[sha] = {"files": dict(files), "parent": parent, "message": message, "date": _now()}
        refs[branch] = sha
        return sha

    def resolve(self, revision):
        """A branch, tag, full or abbreviated commit sha -> full sha (or None)."""
        revision = urllib.parse.unquote(revision)
        for prefix, table in (("refs/heads/", self.branches), ("refs/tags/", self.tags), ("refs/pr/", self.pulls)):
            if revision.startswith(prefix) and revision[len(prefix) :] in table:
                return table[revision[len(prefix) :]]
        if revision in self.branches:
            return self.branches[revision]
        if revision in self.tags:
            return self.tags[revision]
        if len(revision) >= 7:
            matches = [sha for sha in self.commits if sha.startswith(revision.lower())]
            if len(matches) == 1:
                return matches[0]
        return None


class LocalHub:
    """A thread-backed Hub server on 127.0.0.1.

    Args:
        tokens: dict. Valid access tokens mapped to user names.
        host: str. Interface to bind; loopback only by default.
        port: int. 0 picks a free ephemeral port.
    """

    def __init__(self, tokens=None, host="127.0.0.1", port=0):
        self.tokens = dict(tokens or {"hf_local_test_token": "tester"})
        self.repos = {}
        self.requests = []  # (method, path) of every request, for assertions
        self.uploaded_bytes = 0  # decoded file bytes received in commits
        # Injected download failures, consumed in order: [filename, kind, times left]
        # with kind "drop" (connection closed mid-body), "short" (a truncated body
        # sent as if whole) or "alter" (one byte changed, same size).
        self.faults = []
        self.lock = threading.RLock()
        handler = type("Handler", (_Handler,), {"hub": self})
        self.server = http.server.ThreadingHTTPServer((host, port), handler)
        self.server.daemon_threads = True
        self.url = f"http://{host}:{self.server.server_address[1]}"
        self._thread = None

    def start(self):
        self._thread = threading.Thread(target=self.server.serve_forever, name="local-hub", daemon=True)
        self._thread.start()
        return self

    def stop(self):
        if self._thread is not None:
            self.server.shutdown()
            self._thread.join(timeout=5)
            self._thread = None
        self.server.server_close()

    def reset(self):
        with self.lock:
            self.repos.clear()
            self.requests.clear()
            self.uploaded_bytes = 0
            self.faults.clear()

    def fail_downloads(self, filename, kind, times=1):
        """The next `times` GETs of `filename` (any repo) fail the way `kind` says.

        `filename="commit"` with kind "drop" makes the next commit POSTs die
        before anything is committed, as a server that goes away mid-push.
        """
        if kind not in ("drop", "short", "alter"):
            raise ValueError(f"unknown fault {kind!r}")
        with self.lock:
            self.faults.append([filename, kind, int(times)])

    def take_fault(self, filename):
        with self.lock:
            for fault in self.faults:
                if fault[0] == filename and fault[2] > 0:
                    fault[2] -= 1
                    return fault[1]
        return None

    def seed(self, repo_id, files, revision="main", message="seed", private=False):
        """Puts files in a repo directly, server side (as if its owner had pushed them).

        Args:
            repo_id: str. "org/name"; the repo is created (owned by "org") if absent.
            files: dict {path: bytes}. The files of the new commit, on top of the
                revision's current files when it exists.
            revision: str. A branch, or "refs/pr/N" for a pull-request ref.

        Returns:
            str: the new commit's sha.
        """
        with self.lock:
            repo = self.repos.get(repo_id)
            if repo is None:
                repo = self.repos[repo_id] = Repo(repo_id, private, repo_id.split("/")[0])
            head = repo.resolve(revision) or repo.branches.get("main")
            base = dict(repo.commits[head]["files"]) if head else {}
            return repo.commit({**base, **files}, message, revision)

    # ---- state helpers used by the handler -------------------------------------------

    def user_for(self, headers):
        auth = headers.get("Authorization", "")
        if not auth.startswith("Bearer "):
            return None
        token = auth[len("Bearer ") :].strip()
        if token not in self.tokens:
            raise HubError(401, None, "Invalid credentials in Authorization header")
        return self.tokens[token]

    def readable_repo(self, repo_id, user):
        repo = self.repos.get(repo_id)
        if repo is None:
            raise HubError(404, "RepoNotFound", "Repository not found")
        if repo.private and user is None:
            # The real Hub hides private repos from anonymous callers.
            raise HubError(401, "RepoNotFound", "Invalid username or password.")
        return repo

    def writable_repo(self, repo_id, user):
        if user is None:
            raise HubError(401, None, "You must be authenticated to write to a repository")
        return self.readable_repo(repo_id, user)

    def resolved(self, repo, revision):
        sha = repo.resolve(revision)
        if sha is None:
            raise HubError(404, "RevisionNotFound", f"Invalid rev id: {urllib.parse.unquote(revision)}")
        return sha


def _now():
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.000Z")


def _split(path):
    return [urllib.parse.unquote(part) for part in path.split("/")]


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as httpx expects
    hub = None  # set by LocalHub

    def log_message(self, *args):  # keep pytest output clean
        pass

    # ---- plumbing ---------------------------------------------------------------------

    def _body(self):
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    self.rfile.readline()
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _send(self, status, body=b"", headers=None, head=False):
        if isinstance(body, (dict, list)):
            body = json.dumps(body).encode()
            headers = {"Content-Type": "application/json", **(headers or {})}
        headers = dict(headers or {})
        drop = headers.pop(DROP_MARKER, None)
        self.send_response(status)
        for key, value in headers.items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if drop and not head:  # half the promised body, then the connection goes away
            self.wfile.write(body[: len(body) // 2])
            self.wfile.flush()
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)
            return
        if not head:
            self.wfile.write(body)

    def _dispatch(self, method):
        url = urllib.parse.urlsplit(self.path)
        query = urllib.parse.parse_qs(url.query)
        with self.hub.lock:
            self.hub.requests.append((method, url.path))
        body = self._body() if method == "POST" else b""
        try:
            status, payload, headers = self._route(method, url.path, query, body)
        except ConnectionDropped:
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)
            return
        except HubError as error:
            headers = dict(error.headers)
            if error.code:
                headers["X-Error-Code"] = error.code
            headers["X-Error-Message"] = error.message
            self._send(error.status, {"error": error.message, **error.body}, headers, head=method == "HEAD")
            return
        self._send(status, payload, headers, head=method == "HEAD")

    def do_GET(self):
        self._dispatch("GET")

    def do_HEAD(self):
        self._dispatch("HEAD")

    def do_POST(self):
        self._dispatch("POST")

    # ---- routes -----------------------------------------------------------------------

    def _route(self, method, path, query, body):
        hub = self.hub
        user = hub.user_for(self.headers)
        parts = _split(path.strip("/"))
        with hub.lock:
            if parts[:2] == ["api", "agent-harnesses"]:
                return 200, {"standardEnvVars": [], "harnesses": {}}, {}
            if parts[:2] == ["api", "whoami-v2"]:
                if user is None:
                    raise HubError(401, None, "Invalid credentials in Authorization header")
                return 200, {"type": "user", "name": user, "orgs": [], "auth": {"type": "access_token"}}, {}
            if parts[:3] == ["api", "repos", "create"] and method == "POST":
                return self._create_repo(user, json.loads(body or b"{}"))
            if parts[:2] == ["api", "validate-yaml"] and method == "POST":
                return self._validate_yaml(json.loads(body or b"{}"))
            if parts[:2] == ["api", "models"] and len(parts) >= 4:
                repo_id, rest = "/".join(parts[2:4]), parts[4:]
                return self._model_api(method, user, repo_id, rest, query, body)
            if len(parts) >= 5 and parts[2] == "resolve" and method in ("GET", "HEAD"):
                repo_id = "/".join(parts[:2])
                return self._resolve(user, repo_id, parts[3], "/".join(parts[4:]), method)
        raise HubError(404, None, f"No route for {method} {path}")

    def _create_repo(self, user, payload):
        if user is None:
            raise HubError(401, None, "You must be authenticated to create a repository")
        if payload.get("type", "model") != "model":
            raise HubError(400, None, "The local Hub only stores model repositories")
        repo_id = f"{payload.get('organization') or user}/{payload['name']}"
        if repo_id in self.hub.repos:
            # The client reads the url of the existing repo from this 409 body.
            raise HubError(409, None, "You already created this model repo", body={"url": f"{self.hub.url}/{repo_id}"})
        repo = Repo(repo_id, payload.get("visibility") == "private" or bool(payload.get("private")), user)
        repo.commit({".gitattributes": GITATTRIBUTES}, "initial commit")
        self.hub.repos[repo_id] = repo
        return 200, {"url": f"{self.hub.url}/{repo_id}", "name": repo_id, "id": repo_id}, {}

    def _validate_yaml(self, payload):
        content = payload.get("content", "")
        if not content.startswith("---"):
            return 200, {"errors": [], "warnings": [{"message": "Empty or missing yaml metadata in repo card"}]}, {}
        try:
            front = content.split("---", 2)[1]
            data = yaml.safe_load(front)
            if not isinstance(data, dict):
                raise ValueError("metadata must be a mapping")
        except Exception as error:  # any parse failure is a 400, like the Hub
            return 400, {"errors": [{"message": f"Invalid YAML: {error}"}], "warnings": []}, {}
        return 200, {"errors": [], "warnings": []}, {}

    def _model_api(self, method, user, repo_id, rest, query, body):
        hub = self.hub
        if not rest or (rest[0] == "revision" and method == "GET"):
            repo = hub.readable_repo(repo_id, user)
            sha = hub.resolved(repo, rest[1] if rest else "main")
            return 200, self._info(repo, sha), {}
        action = rest[0]
        if action == "tree" and method == "GET":
            repo = hub.readable_repo(repo_id, user)
            sha = hub.resolved(repo, rest[1])
            prefix = "/".join(rest[2:])
            recursive = query.get("recursive", ["false"])[0].lower() in ("1", "true")
            return 200, self._tree(repo, sha, prefix, recursive), {}
        if action == "refs" and method == "GET":
            repo = hub.readable_repo(repo_id, user)
            refs = {"branches": [], "tags": [], "converts": [], "pullRequests": []}
            for kind, table, prefix in (("branches", repo.branches, "refs/heads/"), ("tags", repo.tags, "refs/tags/")):
                for name, sha in sorted(table.items()):
                    refs[kind].append({"name": name, "ref": prefix + name, "targetCommit": sha})
            return 200, refs, {}
        if action == "preupload" and method == "POST":
            repo = hub.writable_repo(repo_id, user)
            sha = hub.resolved(repo, rest[1])
            files = repo.commits[sha]["files"]
            answer = []
            for item in json.loads(body)["files"]:
                existing = files.get(item["path"])
                answer.append(
                    {
                        "path": item["path"],
                        "uploadMode": "regular",
                        "shouldIgnore": False,
                        "oid": git_blob_sha1(existing) if existing is not None else None,
                    }
                )
            return 200, {"files": answer, "commitOid": sha}, {}
        if action == "commit" and method == "POST":
            if hub.take_fault("commit") == "drop":  # dies mid-push: nothing is committed
                raise ConnectionDropped()
            return self._commit(user, repo_id, rest[1], body)
        if action == "tag" and method == "POST":
            repo = hub.writable_repo(repo_id, user)
            sha = hub.resolved(repo, rest[1])
            tag = json.loads(body)["tag"]
            if tag in repo.tags:
                raise HubError(409, None, f"Tag {tag} already exists")
            repo.tags[tag] = sha
            return 200, {}, {}
        if action == "branch" and method == "POST":
            repo = hub.writable_repo(repo_id, user)
            name = rest[1]
            start = json.loads(body or b"{}").get("startingPoint") or "main"
            if name in repo.branches:
                raise HubError(409, None, f"Branch {name} already exists")
            repo.branches[name] = hub.resolved(repo, start)
            return 200, {}, {}
        raise HubError(404, None, f"No route for {method} /api/models/{repo_id}/{'/'.join(rest)}")

    def _info(self, repo, sha):
        commit = repo.commits[sha]
        return {
            "id": repo.repo_id,
            "modelId": repo.repo_id,
            "author": repo.owner,
            "sha": sha,
            "private": repo.private,
            "gated": False,
            "disabled": False,
            "lastModified": commit["date"],
            "createdAt": repo.created_at,
            "tags": [],
            "siblings": [{"rfilename": path} for path in sorted(commit["files"])],
        }

    def _tree(self, repo, sha, prefix, recursive):
        files = repo.commits[sha]["files"]
        prefix = prefix.strip("/")
        base = prefix + "/" if prefix else ""
        if prefix and prefix in files:
            raise HubError(404, "EntryNotFound", f"{prefix} is a file, not a folder")
        entries, folders = [], set()
        for path in sorted(files):
            if not path.startswith(base):
                continue
            relative = path[len(base) :]
            parents = relative.split("/")[:-1]
            for depth in range(1, len(parents) + 1):
                if recursive or depth == 1:
                    folders.add(base + "/".join(parents[:depth]))
            if recursive or not parents:
                content = files[path]
                entries.append({"type": "file", "path": path, "size": len(content), "oid": git_blob_sha1(content)})
        if prefix and not entries and not folders:
            raise HubError(404, "EntryNotFound", f"{prefix} does not exist")
        for folder in sorted(folders):
            oid = hashlib.sha1(f"tree {sha} {folder}".encode()).hexdigest()
            entries.append({"type": "directory", "path": folder, "oid": oid, "size": 0})
        return entries

    def _commit(self, user, repo_id, revision, body):
        hub = self.hub
        repo = hub.writable_repo(repo_id, user)
        branch = urllib.parse.unquote(revision)
        if branch not in repo.branches:
            raise HubError(404, "RevisionNotFound", f"Branch {branch} does not exist")
        files = dict(repo.commits[repo.branches[branch]]["files"])
        header, received = None, 0
        for line in body.splitlines():
            if not line.strip():
                continue
            item = json.loads(line)
            key, value = item["key"], item["value"]
            if key == "header":
                header = value
                parent = value.get("parentCommit")
                if parent and repo.resolve(parent) != repo.branches[branch]:
                    raise HubError(412, None, "A commit has happened since. Please refresh and try again.")
            elif key == "file":
                if value.get("encoding") != "base64":
                    raise HubError(400, None, "The local Hub only accepts base64 file content")
                content = base64.b64decode(value["content"])
                files[value["path"].lstrip("/")] = content
                received += len(content)
            elif key == "deletedFile":
                if files.pop(value["path"], None) is None:
                    raise HubError(404, "EntryNotFound", "A file with this name doesn't exist")
            elif key == "deletedFolder":
                folder = value["path"].rstrip("/") + "/"
                for path in [p for p in files if p.startswith(folder)]:
                    del files[path]
            else:
                raise HubError(400, None, f"The local Hub does not support commit operation {key!r} (LFS/Xet)")
        if header is None:
            raise HubError(400, None, "The commit payload has no header line")
        sha = repo.commit(files, header.get("summary", ""), branch)
        hub.uploaded_bytes += received
        url = f"{hub.url}/{repo_id}/commit/{sha}"
        return 200, {"commitUrl": url, "commitOid": sha, "success": True, "pullRequestUrl": None}, {}

    def _resolve(self, user, repo_id, revision, filename, method):
        hub = self.hub
        repo = hub.readable_repo(repo_id, user)
        sha = hub.resolved(repo, revision)
        content = repo.commits[sha]["files"].get(filename)
        commit_header = {"X-Repo-Commit": sha}
        if content is None:
            raise HubError(404, "EntryNotFound", f"{filename} does not exist at {sha}", commit_header)
        headers = {
            **commit_header,
            "ETag": f'"{git_blob_sha1(content)}"',
            "Accept-Ranges": "bytes",
            "Content-Type": "application/octet-stream",
        }
        status, payload = 200, content
        fault = hub.take_fault(filename) if method == "GET" else None
        if fault == "alter":
            payload = bytes([payload[0] ^ 0xFF]) + payload[1:]
        elif fault == "short":
            payload = payload[: len(payload) // 2]
        elif fault == "drop":
            headers[DROP_MARKER] = "1"
        byte_range = self.headers.get("Range")
        if byte_range and byte_range.startswith("bytes=") and method == "GET":
            start_text, _, end_text = byte_range[len("bytes=") :].partition("-")
            start = int(start_text or 0)
            end = int(end_text) if end_text else len(content) - 1
            if start >= len(content):
                raise HubError(416, None, "Range not satisfiable", {"Content-Range": f"bytes */{len(content)}"})
            payload = content[start : end + 1]
            status = 206
            headers["Content-Range"] = f"bytes {start}-{start + len(payload) - 1}/{len(content)}"
        return status, payload, headers

