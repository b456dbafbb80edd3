"""A small in-memory server that speaks the Hugging Face Hub HTTP protocol.

It implements the part of the protocol that the real `huggingface_hub` client
(tested against 2.4) uses to create repositories, commit files, tag revisions
and download snapshots, so tests can exercise `kerassl.zoo` end to end without
the network and without mocking any kerassl function. Standard library only.

What the client expects, learned from its source:
- Writes: `POST /api/repos/create`, `POST /api/validate-yaml`,
  `POST /api/models/{repo}/preupload/{rev}`, `POST .../commit/{rev}` (NDJSON),
  `POST .../tag/{rev}`, `POST .../branch/{name}`.
- Preupload answers as the real Hub does: `uploadMode: "lfs"` for a file of
  10 MiB or more, a binary file (its 512-byte sample holds a NUL byte or is not
  UTF-8) or a path that the revision's `.gitattributes` marks `filter=lfs`
  (`*.h5`, `*.keras`, `*.safetensors`, `*.bin`, ...); `"regular"` otherwise.
  Regular files travel base64-encoded inside the commit; the commit refuses a
  regular file that is binary or too large, as the Hub does.
- LFS, basic transfer (https://github.com/git-lfs/git-lfs/blob/main/docs/api/batch.md):
  `POST /{repo}.git/info/lfs/objects/batch` answers, per object not yet stored,
  an `upload` action whose href is a signed `PUT` on a separate storage server
  (its own port, so a different origin, as S3 is for the Hub) and a `verify`
  action (`POST /{repo}.git/info/lfs/objects/verify`). The PUT checks the
  object's size and SHA-256 before storing it. The commit's `lfsFile` lines
  (`oid`, `size`) must name stored objects; a commit naming one never uploaded
  is refused whole (400) and the branch does not move.
- Reads: `GET /api/models/{repo}[/revision/{rev}]` (needs `sha`),
  `GET .../tree/{rev}[/{path}]?recursive=...` (LFS files carry `lfs: {oid,
  size, pointerSize}`), `GET .../refs`, `HEAD`/`GET /{repo}/resolve/{rev}/{file}`
  with `X-Repo-Commit`, `ETag` and `Content-Length` (and `Range` for resumed
  downloads). An LFS file answers `302` to a signed URL on the storage server,
  with `X-Linked-Etag` (its SHA-256), `X-Linked-Size` and the pointer's `ETag`,
  as the Hub redirects to its CDN; the client follows it without its token.
- No Xet: the server never answers a Xet token, sends no `X-Xet-Hash`, and
  picks `"transfer": "basic"`. `huggingface_hub` 2.x uses Xet for every LFS
  upload whenever `hf_xet` is importable, without asking the server, so the
  test session sets `HF_HUB_DISABLE_XET=1` (tests/conftest_hub.py). The Xet
  transfer that real pushes take with `hf_xet` installed stays untested offline.
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
import fnmatch
import hashlib
import hmac
import http.server
import json
import os
import socket
import threading
import urllib.parse

import yaml

# The patterns of the .gitattributes the Hub writes into a new model repo (a subset).
LFS_PATTERNS = (
    "*.7z", "*.arrow", "*.bin", "*.bz2", "*.ckpt", "*.ftz", "*.gz", "*.h5", "*.joblib", "*.keras",
    "*.mlmodel", "*.model", "*.msgpack", "*.npy", "*.npz", "*.onnx", "*.ot", "*.parquet", "*.pb",
    "*.pickle", "*.pkl", "*.pt", "*.pth", "*.rar", "*.safetensors", "*.tar", "*.tflite", "*.tgz",
    "*.wasm", "*.xz", "*.zip", "*.zst", "*tfevents*",
)
GITATTRIBUTES = "".join(f"{p} filter=lfs diff=lfs merge=lfs -text\n" for p in LFS_PATTERNS).encode()
LFS_SIZE_THRESHOLD = 10 * 1024 * 1024  # the Hub stores any file this large with LFS


def git_blob_sha1(content):
    """The git object id of a blob, which the Hub reports as a regular file's oid."""
    return hashlib.sha1(b"blob %d\0" % len(content) + content).hexdigest()


def lfs_pointer(oid, size):
    """The git-lfs pointer file that git stores in place of an LFS file."""
    return f"version https://git-lfs.github.com/spec/v1\noid sha256:{oid}\nsize {size}\n".encode()


def looks_binary(sample):
    """The Hub's test on a file's first 512 bytes: a NUL byte, or not UTF-8."""
    if b"\0" in sample:
        return True
    try:
        sample.decode("utf-8")
    except UnicodeDecodeError as error:
        return error.start < len(sample) - 3  # a character cut by the 512-byte sample is fine
    return False


def lfs_patterns(gitattributes):
    """The path patterns a .gitattributes file sends through `filter=lfs`."""
    patterns = []
    for line in (gitattributes or b"").decode("utf-8", "replace").splitlines():
        fields = line.split()
        if len(fields) > 1 and not fields[0].startswith("#") and "filter=lfs" in fields[1:]:
            patterns.append(fields[0])
    return patterns


def matches_lfs(path, patterns):
    name = path.rsplit("/", 1)[-1]
    return any(fnmatch.fnmatchcase(path if "/" in p else name, p) for p in patterns)


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
        # sha -> {"files": {path: bytes}, "lfs": {path: sha256}, "parent", "message", "date"}
        self.commits = {}
        self.branches = {}
        self.tags = {}
        self.pulls = {}  # "N" -> sha: the heads of refs/pr/N (pull requests, as the Hub keeps them)

    def commit(self, files, message, branch="main", lfs=None):
        """A new commit of `files` ({path: bytes}); `lfs` ({path: sha256}) says which are LFS."""
        lfs = {path: oid for path, oid in (lfs or {}).items() if path in files}
        refs = self.branches
        if branch.startswith("refs/pr/"):
            refs, branch = self.pulls, branch[len("refs/pr/") :]
        parent = refs.get(branch)
        digest = hashlib.sha1()
        digest.update(f"{self.repo_id}\0{parent}\0{message}\0{len(self.commits)}".encode())
        for path in sorted(files):
            blob = lfs_pointer(lfs[path], len(files[path])) if path in lfs else files[path]
            digest.update(path.encode() + b"\0" + git_blob_sha1(blob).encode())
        sha = digest.hexdigest()
        self.commits[sha] = {
            "files": dict(files), "lfs": lfs, "parent": parent, "message": message, "date": _now(),
        }
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
        self.requests = []  # (method, path) of every request, storage server's included
        self.uploaded_bytes = 0  # file bytes received: regular files in commits, LFS objects by PUT
        self.objects = {}  # LFS storage: sha256 hex -> bytes, filled by verified PUTs
        self.lfs_log = []  # ("batch" | "upload" | "verify", repo_id, oid) in the order they happened
        self.commit_log = []  # per accepted commit: {"repo_id", "sha", "regular": [...], "lfs": [...]}
        # False answers "regular" to every preupload and accepts any regular file: the
        # server before LFS, kept to exercise the client's path for regular files only.
        self.lfs = True
        # Injected failures, consumed in order: [target, kind, times left]. Downloads:
        # target is a filename, kind "drop" (connection closed mid-body), "short" (a
        # truncated body sent as if whole) or "alter" (one byte changed, same size).
        # Pushes: target "commit", "lfs-batch", "lfs-upload" or "lfs-verify", kind "drop".
        self.faults = []
        self.lock = threading.RLock()
        self._secret = os.urandom(16)
        handler = type("Handler", (_Handler,), {"hub": self})
        self.server = http.server.ThreadingHTTPServer((host, port), handler)
        self.server.daemon_threads = True
        self.url = f"http://{host}:{self.server.server_address[1]}"
        # The storage server (the Hub's S3 and CDN): another port, so another origin.
        storage = type("StorageHandler", (_StorageHandler,), {"hub": self})
        self.storage = http.server.ThreadingHTTPServer((host, 0), storage)
        self.storage.daemon_threads = True
        self.storage_url = f"http://{host}:{self.storage.server_address[1]}"
        self._threads = []

    def start(self):
        for name, server in (("local-hub", self.server), ("local-hub-storage", self.storage)):
            thread = threading.Thread(target=server.serve_forever, name=name, daemon=True)
            thread.start()
            self._threads.append(thread)
        return self

    def stop(self):
        for server, thread in zip((self.server, self.storage), self._threads):
            server.shutdown()
            thread.join(timeout=5)
        self._threads = []
        self.server.server_close()
        self.storage.server_close()

    def reset(self):
        with self.lock:
            self.repos.clear()
            self.requests.clear()
            self.uploaded_bytes = 0
            self.objects.clear()
            self.lfs_log.clear()
            self.commit_log.clear()
            self.faults.clear()
            self.lfs = True

    def fail_downloads(self, filename, kind, times=1):
        """The next `times` GETs of `filename` (any repo) fail the way `kind` says.

        For an LFS file the failure hits the storage server's GET, where the
        client downloads it after the redirect. `filename="commit"` with kind
        "drop" makes the next commit POSTs die before anything is committed, as a
        server that goes away mid-push (see also `interrupt_push`).
        """
        if kind not in ("drop", "short", "alter"):
            raise ValueError(f"unknown fault {kind!r}")
        with self.lock:
            self.faults.append([filename, kind, int(times)])

    def interrupt_push(self, stage, times=1):
        """The next `times` requests of a push's `stage` lose their connection.

        Args:
            stage: str. "lfs-batch" (the batch API call), "lfs-upload" (the PUT of
                an object: the server reads half the body, stores nothing and
                closes the connection), "lfs-verify", or "commit" (the commit
                POST dies before anything is committed).
            times: int. How many requests fail; more than the client's retries
                (5) makes the push fail.
        """
        if stage not in ("lfs-batch", "lfs-upload", "lfs-verify", "commit"):
            raise ValueError(f"unknown push stage {stage!r}")
        with self.lock:
            self.faults.append([stage, "drop", int(times)])

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
            lfs = dict(repo.commits[head]["lfs"]) if head else {}
            patterns = lfs_patterns(files.get(".gitattributes", base.get(".gitattributes", GITATTRIBUTES)))
            for path, content in files.items():  # stored as the Hub would have stored a push
                lfs.pop(path, None)
                if self.upload_mode(path, len(content), content[:512], patterns) == "lfs":
                    lfs[path] = self.store_object(content)
            return repo.commit({**base, **files}, message, revision, lfs)

    def upload_mode(self, path, size, sample, patterns):
        """ "lfs" or "regular", decided as the Hub's preupload decides it."""
        if not self.lfs or size == 0:
            return "regular"
        if size >= LFS_SIZE_THRESHOLD or looks_binary(sample) or matches_lfs(path, patterns):
            return "lfs"
        return "regular"

    def store_object(self, content):
        oid = hashlib.sha256(content).hexdigest()
        with self.lock:
            self.objects[oid] = content
        return oid

    def sign(self, action, oid, size=""):
        message = f"{action}:{oid}:{size}".encode()
        return hmac.new(self._secret, message, hashlib.sha256).hexdigest()

    def signed_download_url(self, oid, filename):
        """A CDN-style URL: the object by its oid, the file's name only in the query, as the Hub's."""
        name = filename.rsplit("/", 1)[-1]
        disposition = f"inline; filename*=UTF-8''{urllib.parse.quote(name)}; filename=\"{name}\";"
        query = urllib.parse.urlencode({"response-content-disposition": disposition, "sig": self.sign("GET", oid)})
        return f"{self.storage_url}/objects/{oid}?{query}"

    def downloads_of(self, filename):
        """How many GETs fetched `filename`'s bytes: from /resolve/ or, for LFS files, from storage."""
        name = filename.rsplit("/", 1)[-1]
        with self.lock:
            return sum(
                1 for method, path in self.requests
                if method == "GET" and (path.endswith("/" + filename) or (
                    path.startswith("/objects/") and f'filename="{name}"' in urllib.parse.unquote_plus(path)))
            )

    def signed_upload_url(self, oid, size):
        return f"{self.storage_url}/upload/{oid}?size={size}&sig={self.sign('PUT', oid, size)}"

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
    storage = False

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
        with self.hub.lock:  # storage requests are logged with their query (it names the file)
            self.hub.requests.append((method, self.path if self.storage else url.path))
        body = self._body() if method == "POST" else b""
        try:
            status, payload, headers = self._route(method, url.path, query, body)
        except ConnectionDropped:
            self._drop_connection()
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

    def do_PUT(self):  # the route reads the body itself, so a fault can cut it short
        self._dispatch("PUT")

    def _drop_connection(self):
        self.close_connection = True
        self.connection.shutdown(socket.SHUT_RDWR)

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
            if len(parts) == 6 and parts[1].endswith(".git") and parts[2:5] == ["info", "lfs", "objects"]:
                repo_id = f"{parts[0]}/{parts[1][: -len('.git')]}"
                return self._lfs_api(method, user, repo_id, parts[5], body)
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
            files, stored_lfs = repo.commits[sha]["files"], repo.commits[sha]["lfs"]
            patterns = lfs_patterns(files.get(".gitattributes"))
            answer = []
            for item in json.loads(body)["files"]:
                path, existing = item["path"], files.get(item["path"])
                sample = base64.b64decode(item.get("sample", ""))
                mode = hub.upload_mode(path, int(item.get("size", 0)), sample, patterns)
                if existing is None:
                    oid = None
                elif path in stored_lfs:  # the client compares an LFS file's sha256
                    oid = stored_lfs[path]
                else:
                    oid = git_blob_sha1(existing)
                answer.append({"path": path, "uploadMode": mode, "shouldIgnore": False, "oid": oid})
            return 200, {"files": answer, "commitOid": sha}, {}
        if action == "commit" and method == "POST":
            if hub.take_fault("commit") == "drop":  # dies mid-push: nothing is committed
                raise ConnectionDropped()
            return self._commit(user, repo_id, rest[1], body)
        if action in ("xet-write-token", "xet-read-token"):
            raise HubError(
                501, None, "The local Hub has no Xet storage. Run the tests with HF_HUB_DISABLE_XET=1 "
                "(tests/conftest_hub.py sets it) so the client uploads with basic LFS."
            )
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
                entries.append(self._file_entry(repo.commits[sha], path))
        if prefix and not entries and not folders:
            raise HubError(404, "EntryNotFound", f"{prefix} does not exist")
        for folder in sorted(folders):
            oid = hashlib.sha1(f"tree {sha} {folder}".encode()).hexdigest()
            entries.append({"type": "directory", "path": folder, "oid": oid, "size": 0})
        return entries

    @staticmethod
    def _file_entry(commit, path):
        content, oid = commit["files"][path], commit["lfs"].get(path)
        if oid is None:
            return {"type": "file", "path": path, "size": len(content), "oid": git_blob_sha1(content)}
        pointer = lfs_pointer(oid, len(content))
        return {
            "type": "file", "path": path, "size": len(content), "oid": git_blob_sha1(pointer),
            "lfs": {"oid": oid, "size": len(content), "pointerSize": len(pointer)},
        }

    def _lfs_api(self, method, user, repo_id, action, body):
        """The git-lfs batch API (upload, basic transfer) and its verify callback."""
        hub = self.hub
        if method != "POST" or action not in ("batch", "verify"):
            raise HubError(404, None, f"No LFS route for {method} {action}")
        if hub.take_fault(f"lfs-{action}") == "drop":
            raise ConnectionDropped()
        repo = hub.writable_repo(repo_id, user)
        payload = json.loads(body or b"{}")
        lfs_json = {"Content-Type": "application/vnd.git-lfs+json"}
        if action == "verify":
            oid, size = payload.get("oid"), payload.get("size")
            hub.lfs_log.append(("verify", repo.repo_id, oid))
            stored = hub.objects.get(oid)
            if stored is None or len(stored) != size:
                raise HubError(404, None, f"LFS object {oid} (size {size}) was not uploaded")
            return 200, {"oid": oid, "size": size}, lfs_json
        if payload.get("operation") != "upload":
            raise HubError(422, None, "The local Hub's LFS batch API only takes uploads")
        if "basic" not in payload.get("transfers", ["basic"]):
            raise HubError(422, None, f"No common transfer in {payload.get('transfers')}; the local Hub offers basic")
        answer = []
        for item in payload.get("objects", []):
            oid, size = item.get("oid"), item.get("size")
            hub.lfs_log.append(("batch", repo.repo_id, oid))
            if not (isinstance(oid, str) and len(oid) == 64 and all(c in "0123456789abcdef" for c in oid)):
                answer.append({"oid": str(oid), "size": int(size or 0), "error": {"code": 422, "message": "Invalid oid"}})
                continue
            if not isinstance(size, int) or size < 0:
                answer.append({"oid": oid, "size": 0, "error": {"code": 422, "message": "Invalid size"}})
                continue
            entry = {"oid": oid, "size": size, "authenticated": True}
            stored = hub.objects.get(oid)
            if stored is None or len(stored) != size:  # no actions: the client skips stored objects
                verify = f"{hub.url}/{repo.repo_id}.git/info/lfs/objects/verify"
                entry["actions"] = {
                    "upload": {"href": hub.signed_upload_url(oid, size), "header": {}},
                    "verify": {"href": verify, "header": {}},
                }
            answer.append(entry)
        return 200, {"transfer": "basic", "objects": answer, "hash_algo": "sha256"}, lfs_json

    def _commit(self, user, repo_id, revision, body):
        hub = self.hub
        repo = hub.writable_repo(repo_id, user)
        branch = urllib.parse.unquote(revision)
        if branch not in repo.branches:
            raise HubError(404, "RevisionNotFound", f"Branch {branch} does not exist")
        head = repo.commits[repo.branches[branch]]
        files, lfs = dict(head["files"]), dict(head["lfs"])
        header, received, regular, added_lfs = None, 0, [], []
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
                content, path = base64.b64decode(value["content"]), value["path"].lstrip("/")
                if hub.lfs and (len(content) >= LFS_SIZE_THRESHOLD or looks_binary(content[:512])):
                    raise HubError(
                        400, None, f"Your push was rejected because it contains binary files: {path}. "
                        "Binary and large files go through LFS (the preupload answer says so)."
                    )
                files[path] = content
                lfs.pop(path, None)
                regular.append(path)
                received += len(content)
            elif key == "lfsFile":
                path, oid = value["path"].lstrip("/"), value.get("oid")
                stored = hub.objects.get(oid)
                if stored is None or value.get("size", len(stored)) != len(stored):
                    raise HubError(
                        400, None, "Your push was rejected because an LFS pointer pointed to a file that "
                        f"does not exist. Offending file: {path} (oid {oid}, size {value.get('size')})."
                    )
                files[path], lfs[path] = stored, oid
                added_lfs.append(path)
            elif key == "deletedFile":
                if files.pop(value["path"], None) is None:
                    raise HubError(404, "EntryNotFound", "A file with this name doesn't exist")
                lfs.pop(value["path"], None)
            elif key == "deletedFolder":
                folder = value["path"].rstrip("/") + "/"
                for path in [p for p in files if p.startswith(folder)]:
                    del files[path]
            else:
                raise HubError(400, None, f"The local Hub does not support commit operation {key!r} (LFS/Xet)")
        if header is None:
            raise HubError(400, None, "The commit payload has no header line")
        sha = repo.commit(files, header.get("summary", ""), branch, lfs)
        hub.uploaded_bytes += received
        hub.commit_log.append({"repo_id": repo_id, "sha": sha, "regular": regular, "lfs": added_lfs})
        url = f"{hub.url}/{repo_id}/commit/{sha}"
        return 200, {"commitUrl": url, "commitOid": sha, "success": True, "pullRequestUrl": None}, {}

    def _resolve(self, user, repo_id, revision, filename, method):
        hub = self.hub
        repo = hub.readable_repo(repo_id, user)
        sha = hub.resolved(repo, revision)
        commit = repo.commits[sha]
        content = commit["files"].get(filename)
        commit_header = {"X-Repo-Commit": sha}
        if content is None:
            raise HubError(404, "EntryNotFound", f"{filename} does not exist at {sha}", commit_header)
        oid = commit["lfs"].get(filename)
        if oid is not None:  # as the Hub does: a redirect to its CDN, the metadata on the 302
            headers = {
                **commit_header,
                "ETag": f'"{git_blob_sha1(lfs_pointer(oid, len(content)))}"',
                "X-Linked-Etag": f'"{oid}"',
                "X-Linked-Size": str(len(content)),
                "Location": hub.signed_download_url(oid, filename),
            }
            return 302, b"", headers
        headers = {**commit_header, "ETag": f'"{git_blob_sha1(content)}"'}
        return self._serve(content, filename, method, headers)

    def _serve(self, content, filename, method, headers):
        """A file's bytes, with `Range` support and the injected download faults."""
        hub = self.hub
        headers = {**headers, "Accept-Ranges": "bytes", "Content-Type": "application/octet-stream"}
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


class _StorageHandler(_Handler):
    """The storage server: signed GETs of LFS objects (the CDN) and signed PUTs (S3)."""

    storage = True

    def _route(self, method, path, query, body):
        hub = self.hub
        parts = _split(path.strip("/"))
        signature = query.get("sig", [""])[0]
        if len(parts) == 2 and parts[0] == "objects" and method in ("GET", "HEAD"):
            oid = parts[1]
            disposition = query.get("response-content-disposition", [""])[0]
            filename = disposition.split('filename="', 1)[-1].split('"', 1)[0] if 'filename="' in disposition else oid
            if not hmac.compare_digest(signature, hub.sign("GET", oid)):
                raise HubError(403, None, "Request signature does not match")
            with hub.lock:
                content = hub.objects.get(oid)
            if content is None:
                raise HubError(404, None, "NoSuchKey")
            headers = {"ETag": f'"{oid}"'}
            if disposition:  # S3 and the CDN echo the signed URL's response-content-disposition
                headers["Content-Disposition"] = disposition
            return self._serve(content, filename, method, headers)
        if len(parts) == 2 and parts[0] == "upload" and method == "PUT":
            return self._upload(parts[1], query.get("size", [""])[0], signature)
        raise HubError(404, None, f"No storage route for {method} {path}")

    def _upload(self, oid, size, signature):
        hub = self.hub
        if not hmac.compare_digest(signature, hub.sign("PUT", oid, size)):
            raise HubError(403, None, "Request signature does not match")
        if hub.take_fault("lfs-upload") == "drop":  # half the object arrives, then the line dies
            length = int(self.headers.get("Content-Length") or 0)
            self.rfile.read(length // 2)
            raise ConnectionDropped()
        content = self._body()
        if len(content) != int(size) or hashlib.sha256(content).hexdigest() != oid:
            raise HubError(400, None, f"The uploaded object does not match its oid {oid} and size {size}")
        hub.store_object(content)
        with hub.lock:
            hub.uploaded_bytes += len(content)
            hub.lfs_log.append(("upload", None, oid))
        return 200, b"", {}
