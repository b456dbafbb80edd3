"""Downloads that go wrong: a dropped connection, a short file, an altered file, a missing path.

The local Hub (tests/hub_server.py) injects each failure into the GETs of a
file; the real `huggingface_hub` client does the download.
"""

import keras
import numpy as np
import pytest

from kerassl import zoo
from tests.test_zoo import features, images, new_repo, push, tiny_encoder

# The Hub protocol holds no backend code, and the encoders these tests push are tiny
# Keras models saved and loaded as on any backend: on TensorFlow only, for the default
# suite's time (about 12 s of each worker's time on JAX). Pushing and loading every
# method's encoder through the local Hub runs on both backends in tests/test_zoo.py.
pytestmark = pytest.mark.skipif(
    keras.config.backend() != "tensorflow", reason="the Hub protocol tests run on TensorFlow only"
)

WEIGHTS = "model.weights.h5"


@pytest.fixture
def pushed(local_hub):
    encoder, repo_id = tiny_encoder(), new_repo("faults")
    push(encoder, repo_id)
    yield encoder, repo_id
    local_hub.faults.clear()


def requests_for(hub, filename):
    return hub.downloads_of(filename)


def test_a_connection_that_keeps_dropping_is_a_hub_access_error_naming_repo_file_and_fix(local_hub, pushed):
    _, repo_id = pushed
    local_hub.fail_downloads(WEIGHTS, "drop", times=50)
    with pytest.raises(zoo.HubAccessError) as info:
        zoo.load_encoder(f"hf://{repo_id}")
    message = str(info.value)
    assert repo_id in message and WEIGHTS in message and "force_download=True" in message


def test_a_connection_dropped_once_recovers(local_hub, pushed):
    encoder, repo_id = pushed
    local_hub.fail_downloads(WEIGHTS, "drop", times=1)
    try:
        loaded = zoo.load_encoder(f"hf://{repo_id}")
    except zoo.HubAccessError as error:  # a client without resume must still say what to do
        assert "Run the load again" in str(error)
        loaded = zoo.load_encoder(f"hf://{repo_id}")
    np.testing.assert_allclose(features(loaded, images()), features(encoder, images()), atol=1e-6)


def test_a_short_file_is_a_hub_access_error_and_the_next_load_works(local_hub, pushed):
    encoder, repo_id = pushed
    local_hub.fail_downloads(WEIGHTS, "short", times=50)
    with pytest.raises(zoo.HubAccessError, match=WEIGHTS):
        zoo.load_encoder(f"hf://{repo_id}")
    local_hub.faults.clear()
    loaded = zoo.load_encoder(f"hf://{repo_id}")  # nothing broken stayed in the cache
    np.testing.assert_allclose(features(loaded, images()), features(encoder, images()), atol=1e-6)


def test_an_altered_file_is_downloaded_once_more_then_loads(local_hub, pushed):
    encoder, repo_id = pushed
    local_hub.fail_downloads(WEIGHTS, "alter", times=1)
    before = requests_for(local_hub, WEIGHTS)
    loaded = zoo.load_encoder(f"hf://{repo_id}")
    assert requests_for(local_hub, WEIGHTS) - before == 2  # the altered copy, then a good one
    np.testing.assert_allclose(features(loaded, images()), features(encoder, images()), atol=1e-6)


def test_a_file_altered_every_time_is_a_checksum_error_after_one_retry(local_hub, pushed):
    _, repo_id = pushed
    local_hub.fail_downloads(WEIGHTS, "alter", times=50)
    before = requests_for(local_hub, WEIGHTS)
    with pytest.raises(zoo.ChecksumError, match="fresh download"):
        zoo.load_encoder(f"hf://{repo_id}")
    assert requests_for(local_hub, WEIGHTS) - before == 2
    local_hub.faults.clear()
    zoo.load_encoder(f"hf://{repo_id}")  # the corrupt copy did not stay in the cache


def test_force_download_fetches_again(local_hub, pushed):
    _, repo_id = pushed
    zoo.load_encoder(f"hf://{repo_id}")
    before = requests_for(local_hub, WEIGHTS)
    zoo.load_encoder(f"hf://{repo_id}")
    assert requests_for(local_hub, WEIGHTS) == before  # cached
    zoo.load_encoder(f"hf://{repo_id}", force_download=True)
    assert requests_for(local_hub, WEIGHTS) == before + 1


@pytest.mark.parametrize("source", ["./missing_dir", "missing_dir/", "~/kerassl_missing_dir_x", "/nonexistent/enc"])
def test_a_missing_local_path_is_reported_as_such(source):
    with pytest.raises(zoo.LocalPathNotFoundError, match="does not exist") as info:
        zoo.load_encoder(source)
    assert "no preset named" not in str(info.value).lower()
    assert isinstance(info.value, FileNotFoundError)


def test_a_push_that_dies_midway_leaves_the_repo_at_its_previous_commit(local_hub, pushed):
    import huggingface_hub

    _, repo_id = pushed
    api = huggingface_hub.HfApi()
    before = api.repo_info(repo_id).sha
    local_hub.fail_downloads("commit", "drop", times=50)  # past the client's own retries
    with pytest.raises(zoo.HubAccessError, match="previous commit"):
        push(tiny_encoder(width=4), repo_id, overwrite=True)
    local_hub.faults.clear()
    assert api.repo_info(repo_id).sha == before
    zoo.load_encoder(f"hf://{repo_id}")  # still the old, whole entry
