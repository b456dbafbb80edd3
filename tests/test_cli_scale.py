"""The command line past the demo: every method, an unlabeled folder, resume, info, a fast --help."""

import subprocess
import sys

import keras
import numpy as np
import pytest
from PIL import Image

import kerassl
from kerassl import cli
from kerassl_cli import METHODS


def test_help_imports_no_backend():
    code = (
        "import sys\n"
        "from kerassl_cli import main\n"
        "try:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
        "print('LOADED', sorted(m for m in ('keras', 'tensorflow', 'jax', 'kerassl') if m in sys.modules))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "pretrain" in result.stdout
    assert "LOADED []" in result.stdout, result.stdout
    assert "I0000" not in result.stderr and "oneDNN" not in result.stderr


@pytest.mark.parametrize("name", sorted(METHODS))
def test_every_method_in_the_table_is_a_kerassl_method(name):
    spec = METHODS[name]
    cls = getattr(kerassl, spec.class_name)
    assert issubclass(cls, keras.Model)
    if spec.takes_encoder:
        assert spec.backbone in kerassl.backbones.list_backbones()
    assert spec.optimizer in ("adam", "adamw", "sgd") and spec.learning_rate > 0


def image_tree(root, count=32, size=8, seed=0):
    """A nested folder of unlabeled PNGs: root/a/*.png, root/b/c/*.png, root/*.png."""
    rng = np.random.default_rng(seed)
    folders = [root, root / "a", root / "b" / "c"]
    for folder in folders:
        folder.mkdir(parents=True, exist_ok=True)
    for i in range(count):
        pixels = rng.integers(0, 256, (size, size, 3)).astype("uint8")
        Image.fromarray(pixels).save(folders[i % 3] / f"{i}.png")
    return root


def pretrain_args(data, output, *extra):
    return [
        "pretrain", "--method", "simclr", "--data", str(data), "--image-size", "8",
        "--backbone", "small_convnet", "--batch-size", "16", "--output", str(output), *extra,
    ]


def test_pretrain_on_an_unlabeled_nested_folder(tmp_path):
    data = image_tree(tmp_path / "images")
    output = tmp_path / "encoder.keras"
    assert cli.main(pretrain_args(data, output, "--epochs", "1")) == 0
    encoder = keras.saving.load_model(output)
    assert encoder.predict(np.zeros((2, 8, 8, 3), "float32"), verbose=0).shape[0] == 2


def test_knn_monitoring_needs_a_labelled_split(tmp_path):
    data = image_tree(tmp_path / "images", count=6)
    with pytest.raises(SystemExit, match="needs labels"):
        cli.main(pretrain_args(data, tmp_path / "e.keras", "--knn-every", "1"))


def test_resume_continues_after_a_kill(tmp_path, monkeypatch, capsys):
    data = image_tree(tmp_path / "images")
    backup = tmp_path / "backup"
    original = keras.callbacks.BackupAndRestore

    class KilledAfterFirstEpoch(original):
        def on_epoch_end(self, epoch, logs=None):
            super().on_epoch_end(epoch, logs)
            raise KeyboardInterrupt("killed")

    monkeypatch.setattr(keras.callbacks, "BackupAndRestore", KilledAfterFirstEpoch)
    args = pretrain_args(data, tmp_path / "e.keras", "--epochs", "2", "--resume", str(backup))
    with pytest.raises(KeyboardInterrupt):
        cli.main(args)
    assert any(backup.iterdir()), "nothing was backed up"
    monkeypatch.setattr(keras.callbacks, "BackupAndRestore", original)
    capsys.readouterr()
    assert cli.main(args) == 0
    out = capsys.readouterr().out
    assert "Epoch 2/2" in out and "Epoch 1/2" not in out, out
    assert (tmp_path / "e.keras").exists()


def test_info_names_backend_devices_and_policy(capsys):
    assert cli.main(["info"]) == 0
    out = capsys.readouterr().out
    for word in ("kerassl", "backend", keras.config.backend(), "devices", "precision policy", "XLA"):
        assert word in out, out


def test_unknown_precision_is_refused():
    with pytest.raises(SystemExit):
        cli.main(["pretrain", "--precision", "int4"])
