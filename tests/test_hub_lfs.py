"""Pushes and loads that take the path real weights take: LFS upload, redirect download.

The local Hub (tests/hub_server.py) answers preupload as the Hub does, so the
real `huggingface_hub` client sends the weights through the LFS batch API and a
PUT to the storage server, commits them as `lfsFile` lines, and downloads them
by following a 302 to the storage server. Nothing of kerassl or the client is
mocked; only the client's backoff waits between retries are skipped.

Untested offline: the Xet transfer. `huggingface_hub` 2.x takes it for every LFS
file whenever `hf_xet` is importable, so the session runs with
HF_HUB_DISABLE_XET=1 (tests/conftest_hub.py) and the local Hub offers no Xet.
"""

import base64
import hashlib
import json
import types
import urllib.error
import urllib.request

import huggingface_hub
import keras
import numpy as np
import pytest
from huggingface_hub import constants
from huggingface_hub.utils import _http

from kerassl import zoo
from tests.conftest_hub import LOCAL_HUB_TOKEN
from tests.test_zoo import features, images, new_repo, push, tiny_encoder, tiny_method

# The Hub protocol holds no backend code, and the encoders these tests push are tiny
# Keras models saved and loaded as on any backend: on TensorFlow only, for the default
# suite's time (about 12 s of each worker's time on JAX). Pushing and loading every
# method's encoder through the local Hub runs on both backends in tests/test_zoo.py.
pytestmark = pytest.mark.skipif(
    keras.config.backend() != "tensorflow", reason="the Hub protocol tests run on TensorFlow only"
)

WEIGHTS = "model.weights.h5"
TEXT_FILES = {"config.json", "metadata.json", "README.md"}


@pytest.fixture
def hub(local_hub):
    yield local_hub
    local_hub.faults.clear()
    local_hub.lfs = True


@pytest.fixture
def no_backoff_waits(monkeypatch):
    """The client retries a dropped request 5 times, 23 s of waits in all: skip the waits."""
    monkeypatch.setattr(_http, "time", types.SimpleNamespace(sleep=lambda seconds: None))


def pushed_oid(hub, repo_id, path=WEIGHTS):
    """The LFS object id (SHA-256) of `path` at the head of the repo's main branch."""
    repo = hub.repos[repo_id]
    return repo.commits[repo.branches["main"]]["lfs"][path]


def post(hub, path, payload, ndjson=False):
    """A raw authenticated POST to the local Hub: (status, JSON answer)."""
    body = b"".join(json.dumps(line).encode() + b"\n" for line in payload) if ndjson else json.dumps(payload).encode()
    request = urllib.request.Request(
        hub.url + path, data=body, method="POST",
        headers={"Authorization": f"Bearer {LOCAL_HUB_TOKEN}", "Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as answer:
            return answer.status, json.loads(answer.read() or b"{}")
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"{}")


def test_a_push_sends_the_weights_through_lfs_and_the_text_files_regular(hub):
    encoder, repo_id = tiny_encoder(), new_repo("lfs")
    push(encoder, repo_id)
    commit = hub.commit_log[-1]
    assert commit["repo_id"] == repo_id
    assert commit["lfs"] == [WEIGHTS]
    assert set(commit["regular"]) == TEXT_FILES
    oid = pushed_oid(hub, repo_id)
    assert hashlib.sha256(hub.objects[oid]).hexdigest() == oid
    metadata = json.loads(hub.repos[repo_id].commits[commit["sha"]]["files"]["metadata.json"])
    assert metadata["files"][WEIGHTS]["sha256"] == oid  # the bytes kerassl wrote, unchanged
    assert ("batch", repo_id, oid) in hub.lfs_log and ("upload", None, oid) in hub.lfs_log
    assert ("verify", repo_id, oid) in hub.lfs_log
    assert any(method == "PUT" and path.startswith(f"/upload/{oid}") for method, path in hub.requests)
    # The tree reports it as LFS, with the size and SHA-256 the client reads.
    entry = next(e for e in huggingface_hub.HfApi().list_repo_tree(repo_id) if e.path == WEIGHTS)
    assert entry.lfs is not None and entry.lfs.sha256 == oid and entry.lfs.size == entry.size


def test_a_method_push_sends_every_binary_file_through_lfs(hub):
    repo_id = new_repo("lfs-method")
    push(tiny_method(), repo_id)
    commit = hub.commit_log[-1]
    assert WEIGHTS in commit["lfs"] and any(path.startswith("method/") for path in commit["lfs"])
    assert not any(path.endswith((".h5", ".keras")) for path in commit["regular"])


def test_an_lfs_file_is_downloaded_by_redirect_and_loads_the_same_weights(hub):
    encoder, repo_id = tiny_encoder(), new_repo("lfs-load")
    push(encoder, repo_id)
    oid = pushed_oid(hub, repo_id)
    meta = huggingface_hub.get_hf_file_metadata(huggingface_hub.hf_hub_url(repo_id, WEIGHTS))
    assert meta.etag == oid  # X-Linked-Etag, not the pointer's ETag
    assert meta.location.startswith(hub.storage_url + f"/objects/{oid}?")  # the 302's target
    before = len(hub.requests)
    loaded = zoo.load_encoder(f"hf://{repo_id}")
    asked = hub.requests[before:]
    assert any(method == "HEAD" and "/resolve/" in path and path.endswith(f"/{WEIGHTS}") for method, path in asked)
    assert any(method == "GET" and path.startswith(f"/objects/{oid}?") for method, path in asked)
    assert not any(method == "GET" and path.endswith(f"/{WEIGHTS}") for method, path in asked)
    for a, b in zip(encoder.get_weights(), loaded.get_weights()):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_allclose(features(loaded, images()), features(encoder, images()), atol=1e-6)


def test_the_storage_server_refuses_an_unsigned_download(hub):
    encoder, repo_id = tiny_encoder(), new_repo("lfs-sig")
    push(encoder, repo_id)
    url = f"{hub.storage_url}/objects/{pushed_oid(hub, repo_id)}?sig=forged"
    with pytest.raises(urllib.error.HTTPError) as info:
        urllib.request.urlopen(url, timeout=30)
    assert info.value.code == 403


def test_pushing_the_same_weights_again_uploads_nothing(hub):
    encoder, repo_id = tiny_encoder(), new_repo("lfs-again")
    push(encoder, repo_id)
    oid, puts = pushed_oid(hub, repo_id), sum(1 for method, _ in hub.requests if method == "PUT")
    hub.seed(repo_id, {}, message="a commit by someone else")  # the push must add a commit
    push(encoder, repo_id, commit_message="the same weights")
    assert ("batch", repo_id, oid) in hub.lfs_log[-2:]  # asked, and told it is stored: no PUT
    assert sum(1 for method, _ in hub.requests if method == "PUT") == puts
    assert pushed_oid(hub, repo_id) == oid


def test_a_corrupted_lfs_object_is_caught_by_kerassl_checksum(hub):
    encoder, repo_id = tiny_encoder(), new_repo("lfs-corrupt")
    push(encoder, repo_id)
    oid = pushed_oid(hub, repo_id)
    good = hub.objects[oid]
    hub.objects[oid] = good[:100] + bytes([good[100] ^ 0xFF]) + good[101:]  # the stored bytes rot
    try:
        before = hub.downloads_of(WEIGHTS)
        with pytest.raises(zoo.ChecksumError, match="fresh download"):
            zoo.load_encoder(f"hf://{repo_id}")
        assert hub.downloads_of(WEIGHTS) - before == 2  # deleted and fetched once more
    finally:
        hub.objects[oid] = good
    loaded = zoo.load_encoder(f"hf://{repo_id}")  # nothing corrupt stayed in the cache
    np.testing.assert_allclose(features(loaded, images()), features(encoder, images()), atol=1e-6)


@pytest.mark.parametrize("stage", ["lfs-batch", "lfs-upload", "lfs-verify", "commit"])
def test_a_push_interrupted_mid_upload_leaves_the_previous_commit(hub, no_backoff_waits, stage):
    old, repo_id = tiny_encoder(), new_repo("lfs-cut")
    push(old, repo_id)
    api = huggingface_hub.HfApi()
    before = api.repo_info(repo_id).sha
    new, stored = tiny_encoder(width=4), set(hub.objects)
    asked = len(hub.requests)
    hub.interrupt_push(stage, times=50)  # past the client's 5 retries: the server is gone
    with pytest.raises(zoo.HubAccessError, match="previous commit") as info:
        push(new, repo_id, overwrite=True)
    assert repo_id in str(info.value)
    puts = sum(1 for method, _ in hub.requests[asked:] if method == "PUT")
    assert puts == {"lfs-batch": 0, "lfs-upload": 6}.get(stage, 1)  # a cut PUT is tried 6 times
    if stage in ("lfs-batch", "lfs-upload"):
        assert set(hub.objects) == stored  # half an object is never stored
    hub.faults.clear()
    assert api.repo_info(repo_id).sha == before
    loaded = zoo.load_encoder(f"hf://{repo_id}", force_download=True)
    for a, b in zip(old.get_weights(), loaded.get_weights()):
        np.testing.assert_array_equal(a, b)
    push(new, repo_id, overwrite=True)  # and the push goes through once the server is back
    assert api.repo_info(repo_id).sha != before


def test_a_commit_naming_an_object_never_uploaded_is_refused(hub):
    repo_id = new_repo("lfs-missing")
    push(tiny_encoder(), repo_id)
    head = hub.repos[repo_id].branches["main"]
    missing = hashlib.sha256(b"never uploaded").hexdigest()
    status, answer = post(hub, f"/api/models/{repo_id}/commit/main", [
        {"key": "header", "value": {"summary": "sneak", "parentCommit": head}},
        {"key": "lfsFile", "value": {"path": WEIGHTS, "algo": "sha256", "oid": missing, "size": 14}},
    ], ndjson=True)
    assert status == 400 and "does not exist" in answer["error"]
    assert hub.repos[repo_id].branches["main"] == head


def test_a_binary_file_sent_as_regular_is_refused(hub):
    repo_id = new_repo("lfs-binary")
    push(tiny_encoder(), repo_id)
    head = hub.repos[repo_id].branches["main"]
    status, answer = post(hub, f"/api/models/{repo_id}/commit/main", [
        {"key": "header", "value": {"summary": "binary as text"}},
        {"key": "file", "value": {"path": "blob.dat", "encoding": "base64",
                                  "content": base64.b64encode(b"\x00\x01binary").decode()}},
    ], ndjson=True)
    assert status == 400 and "binary" in answer["error"]
    assert hub.repos[repo_id].branches["main"] == head


@pytest.mark.parametrize(
    "path, content, mode",
    [
        ("README.md", b"# a card\n", "regular"),
        ("config.json", b'{"a": 1}', "regular"),
        ("notes.txt", "caf\u00e9 ".encode() * 200, "regular"),  # UTF-8 cut at byte 512 is still text
        ("model.weights.h5", b"text that is named like weights", "lfs"),  # .gitattributes
        ("model.safetensors", b"{}", "lfs"),
        ("data.raw", b"\x89HDF\r\n\x1a\n\x00\x00", "lfs"),  # binary sample
        ("latin1.txt", "caf\u00e9".encode("latin-1") * 10, "lfs"),  # not UTF-8
        ("big.txt", b"a" * (10 * 1024 * 1024), "lfs"),  # 10 MiB
    ],
)
def test_preupload_answers_lfs_for_large_and_binary_files_as_the_hub_does(hub, path, content, mode):
    repo_id = new_repo("lfs-rule")
    huggingface_hub.HfApi(token=LOCAL_HUB_TOKEN).create_repo(repo_id)
    status, answer = post(hub, f"/api/models/{repo_id}/preupload/main", {"files": [
        {"path": path, "sample": base64.b64encode(content[:512]).decode(), "size": len(content)},
    ]})
    assert status == 200 and answer["files"][0]["uploadMode"] == mode


def test_with_xet_on_the_local_hub_refuses_and_the_push_says_so(hub, monkeypatch):
    """What a user with hf_xet and the real Hub runs: untestable here, and refused clearly."""
    repo_id = new_repo("lfs-xet")
    push(tiny_encoder(), repo_id)  # through basic LFS
    before = huggingface_hub.HfApi().repo_info(repo_id).sha
    monkeypatch.setattr(constants, "HF_HUB_DISABLE_XET", False)  # now the client picks Xet
    with pytest.raises(zoo.HubAccessError, match="previous commit") as info:
        push(tiny_encoder(width=4), repo_id, overwrite=True)
    assert "xet-write-token" in str(info.value)
    assert huggingface_hub.HfApi().repo_info(repo_id).sha == before


def test_with_xet_on_and_only_regular_files_the_clients_pipeline_commits(hub, monkeypatch):
    """The client's streamed pipeline (hf_xet installed), kept tested for regular files."""
    monkeypatch.setattr(constants, "HF_HUB_DISABLE_XET", False)
    hub.lfs = False  # the server before LFS: every file regular
    encoder, repo_id = tiny_encoder(), new_repo("lfs-off")
    push(encoder, repo_id)
    assert hub.commit_log[-1]["lfs"] == [] and WEIGHTS in hub.commit_log[-1]["regular"]
    loaded = zoo.load_encoder(f"hf://{repo_id}")
    np.testing.assert_allclose(features(loaded, images()), features(encoder, images()), atol=1e-6)

