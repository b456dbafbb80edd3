"""A local Hugging Face Hub for the test session.

`huggingface_hub` reads HF_ENDPOINT and HF_HOME once, when it is imported, and
Keras imports it as soon as `import keras` runs. So this module must be
imported by tests/conftest.py *before* keras:

    from tests.conftest_hub import local_hub  # noqa: F401  (first import: sets HF_ENDPOINT)

Importing it starts the server on 127.0.0.1 (an ephemeral port), points the
client at it with a throw-away HF_HOME, and removes any real token from the
environment, so no test can reach or authenticate against the real Hub.

It also sets HF_HUB_DISABLE_XET=1: `huggingface_hub` 2.x sends every LFS file
through Xet whenever `hf_xet` is importable, without asking the server first,
and the local Hub has no Xet storage. With Xet off the client takes the LFS
batch API and its basic transfer, which the local Hub implements, as the real
Hub still accepts. What this leaves untested offline: the Xet transfer that a
real push takes when `hf_xet` is installed (the default), and the client's
multi-commit upload pipeline that comes with it.
"""

import atexit
import os
import shutil
import sys
import tempfile

import pytest

from tests.hub_server import LocalHub

LOCAL_HUB_USER = "tester"
LOCAL_HUB_TOKEN = "hf_local_test_token"

if "huggingface_hub" in sys.modules:
    raise RuntimeError(
        "huggingface_hub was imported before tests/conftest_hub.py, so it already points at "
        "the real Hub. Import conftest_hub first in tests/conftest.py (before `import keras`)."
    )

HUB = LocalHub(tokens={LOCAL_HUB_TOKEN: LOCAL_HUB_USER}).start()
HF_HOME = tempfile.mkdtemp(prefix="kerassl-hf-home-")

for _name in ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "HF_TOKEN_PATH", "HF_HUB_CACHE",
              "HUGGINGFACE_HUB_CACHE", "HF_XET_CACHE", "HF_ASSETS_CACHE", "TRANSFORMERS_OFFLINE"):
    os.environ.pop(_name, None)
os.environ.update(
    HF_ENDPOINT=HUB.url,
    HF_HOME=HF_HOME,
    HF_HUB_OFFLINE="0",
    HF_HUB_DISABLE_TELEMETRY="1",
    HF_HUB_DISABLE_PROGRESS_BARS="1",
    HF_HUB_DISABLE_UPDATE_CHECK="1",
    HF_HUB_DISABLE_XET="1",
)


def _cleanup():
    HUB.stop()
    shutil.rmtree(HF_HOME, ignore_errors=True)


atexit.register(_cleanup)


@pytest.fixture(scope="session")
def local_hub():
    """The running LocalHub (attributes: url, storage_url, tokens, repos, objects, requests,
    lfs_log, commit_log, uploaded_bytes; see tests/hub_server.py).

    Fails the test, rather than touching the real Hub, if the client is not
    pointed at the local server.
    """
    from huggingface_hub import constants

    if constants.ENDPOINT != HUB.url:
        pytest.fail(
            f"huggingface_hub points at {constants.ENDPOINT}, not the local Hub {HUB.url}: "
            "tests/conftest_hub.py must be imported before keras/huggingface_hub."
        )
    return HUB
