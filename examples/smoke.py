"""What the examples' `--smoke` mode needs to run offline: a local Hugging Face Hub.

Not an example itself. An example that talks to the Hub calls `start_local_hub()`
in smoke mode *before* importing keras (huggingface_hub reads `HF_ENDPOINT` once,
at import, and keras imports it): the project's own Hub-protocol server
(`tests/hub_server.py`, the one the test suite uses) starts on 127.0.0.1, the real
`huggingface_hub` client is pointed at it with a throw-away `HF_HOME` and a local
write token, and every real token is removed from the environment, so a smoke run
can neither reach nor authenticate against the real Hub. The examples then call
the same kerassl functions they call at full size.

It needs a checkout of the project (the server lives in `tests/`), not network.
"""

import atexit
import os
import pathlib
import shutil
import sys
import tempfile

REPO = pathlib.Path(__file__).resolve().parents[1]
LOCAL_USER = "examples"
LOCAL_TOKEN = "hf_local_examples_token"
# Official checkpoints the examples load by preset name, and where a tiny random
# stand-in with the same layout lives in the checkout: (fixture, repo id, revision).
OFFICIAL_FIXTURES = {
    "dino_vits16": ("dino_vit", "facebook/dino-vits16", "refs/pr/1"),
}
_REAL_HUB_VARIABLES = (
    "HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "HF_TOKEN_PATH", "HF_HUB_CACHE",
    "HUGGINGFACE_HUB_CACHE", "HF_XET_CACHE", "HF_ASSETS_CACHE",
)


def start_local_hub():
    """Starts the local Hub and points huggingface_hub at it; returns the server.

    The server has one user, `LOCAL_USER`, whose token is put in `HF_TOKEN`,
    so `kerassl.zoo.push_to_hub(model, f"{LOCAL_USER}/name")` works as it does
    on the real Hub after `huggingface-cli login`. It stops when Python exits.
    """
    if "huggingface_hub" in sys.modules:
        raise RuntimeError(
            "huggingface_hub is already imported and points at the real Hub: call "
            "smoke.start_local_hub() before importing keras or kerassl."
        )
    if str(REPO) not in sys.path:
        sys.path.insert(0, str(REPO))
    from tests.hub_server import LocalHub

    hub = LocalHub(tokens={LOCAL_TOKEN: LOCAL_USER}).start()
    home = tempfile.mkdtemp(prefix="kerassl-example-hf-home-")
    for name in _REAL_HUB_VARIABLES:
        os.environ.pop(name, None)
    os.environ.update(
        HF_ENDPOINT=hub.url,
        HF_HOME=home,
        HF_TOKEN=LOCAL_TOKEN,
        HF_HUB_OFFLINE="0",
        HF_HUB_DISABLE_TELEMETRY="1",
        HF_HUB_DISABLE_PROGRESS_BARS="1",
        HF_HUB_DISABLE_UPDATE_CHECK="1",
        # The local Hub takes LFS uploads as the Hub does, but has no Xet storage, and
        # huggingface_hub uses Xet whenever hf_xet is installed: basic LFS instead.
        HF_HUB_DISABLE_XET="1",
    )

    def stop():
        hub.stop()
        shutil.rmtree(home, ignore_errors=True)

    atexit.register(stop)
    return hub


def serve_official(hub, preset):
    """Serves the tiny stand-in of an official checkpoint under its real repo id.

    The repo is laid out as the authors' is: `main` holds `config.json` and
    `pytorch_model.bin`; the pinned pull-request ref adds `model.safetensors`,
    which is what the preset loads. The stand-in is a random ViT written by
    `tests/fixtures/make_official_fixtures.py` in the transformers layout, so
    the same converter runs on it as on the real checkpoint.
    """
    fixture, repo_id, revision = OFFICIAL_FIXTURES[preset]
    folder = REPO / "tests" / "data" / "official" / fixture
    if not folder.is_dir():
        raise FileNotFoundError(
            f"No stand-in checkpoint at {folder}: the smoke run of this example needs the "
            "official-checkpoint fixtures of the project checkout (tests/data/official/)."
        )
    files = {p.name: p.read_bytes() for p in folder.iterdir() if p.name != "reference.npz"}
    weights = files.pop("model.safetensors")
    bin_file = folder.parent / f"{fixture}_bin" / "pytorch_model.bin"
    if bin_file.is_file():
        files["pytorch_model.bin"] = bin_file.read_bytes()
    hub.seed(repo_id, files)
    hub.seed(repo_id, {"model.safetensors": weights}, revision)
    return f"hf://{repo_id}@{revision}"
