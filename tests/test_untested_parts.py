"""Public parts no other test exercised: MLPHead, register_preset, resolve_jit_compile,
the `demo` and `zoo` CLI subcommands, and zoo/rebuild.py."""

import functools
import importlib.util
import json
import pathlib

import keras
import numpy as np
import pytest

import kerassl
from kerassl import cli, demo, heads, zoo
from kerassl.finetune import resolve_jit_compile
from tests.conftest import tiny_encoder
from tests.conftest_hub import LOCAL_HUB_TOKEN, LOCAL_HUB_USER

ROOT = pathlib.Path(__file__).resolve().parents[1]


# -- heads.MLPHead ------------------------------------------------------------------


def test_mlp_head_is_dense_relu_dense_as_written():
    head = heads.MLPHead([6, 3], batch_norm=False)
    x = np.random.default_rng(0).normal(size=(5, 4)).astype("float32")
    out = keras.ops.convert_to_numpy(head(x))
    (w1, b1), (w2, b2) = [[keras.ops.convert_to_numpy(v) for v in block[0].weights] for block in head.blocks]
    np.testing.assert_allclose(out, np.maximum(x @ w1 + b1, 0.0) @ w2 + b2, rtol=1e-5, atol=1e-6)
    assert head.compute_output_shape((None, 4)) == (None, 3)


def test_mlp_head_batch_norm_placement_and_bias():
    head = heads.MLPHead([8, 8, 2], batch_norm=True, last_batch_norm=True)
    head.build((None, 4))
    kinds = [[type(layer).__name__ for layer in block] for block in head.blocks]
    assert kinds == [
        ["Dense", "BatchNormalization", "Activation"],
        ["Dense", "BatchNormalization", "Activation"],
        ["Dense", "BatchNormalization"],
    ]
    # Dense layers before a BatchNorm drop their bias; the last BatchNorm has no scale.
    assert all(not block[0].use_bias for block in head.blocks)
    assert not head.blocks[-1][1].scale and head.blocks[0][1].scale
    plain = heads.MLPHead([8, 2], batch_norm=False)
    assert [len(b) for b in plain.blocks] == [2, 1] and all(b[0].use_bias for b in plain.blocks)


def test_mlp_head_round_trips_and_checks_units(tmp_path):
    head = heads.MLPHead([8, 3], activation="gelu", name="h")
    clone = heads.MLPHead.from_config(head.get_config())
    assert clone.get_config() == head.get_config()
    inputs = keras.Input((4,))
    model = keras.Model(inputs, head(inputs))
    model.save(tmp_path / "head.keras")
    loaded = keras.saving.load_model(tmp_path / "head.keras", safe_mode=True)
    x = np.ones((2, 4), "float32")
    np.testing.assert_allclose(loaded.predict(x, verbose=0), model.predict(x, verbose=0), rtol=1e-6)
    for bad in ([], [4, 0]):
        with pytest.raises(ValueError, match="units must be a non-empty list"):
            heads.MLPHead(bad)


# -- zoo.register_preset ----------------------------------------------------------------


@pytest.fixture
def registry(monkeypatch):
    """The preset registry, restored after the test."""
    presets = dict(zoo.presets.PRESETS)
    monkeypatch.setattr(zoo.presets, "PRESETS", presets)
    monkeypatch.setattr(kerassl.zoo.hub, "PRESETS", presets, raising=False)
    return presets


def test_registered_preset_is_listed_and_loads_from_its_hub_repo(local_hub, registry):
    encoder = tiny_encoder()
    repo_id = f"{LOCAL_HUB_USER}/registered-preset"
    zoo.push_to_hub(encoder, repo_id, token=LOCAL_HUB_TOKEN, tag="v1")
    entry = zoo.register_preset("acme_tiny", repo_id, revision="v1", method="SimCLR", dataset="toy")
    assert entry["hub_id"] == repo_id and entry["published"] is True
    assert zoo.get_preset("acme_tiny")["method"] == "SimCLR"
    assert "acme_tiny" in zoo.list_presets("acme*", published_only=True)
    x = np.random.default_rng(0).uniform(size=(2, 16, 16, 3)).astype("float32")
    loaded = zoo.load_encoder("acme_tiny")
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(loaded(x)), keras.ops.convert_to_numpy(encoder(x)), rtol=1e-5, atol=1e-6
    )


def test_registered_unpublished_preset_fails_clearly(local_hub, registry):
    zoo.register_preset("acme_later", f"{LOCAL_HUB_USER}/not-there", published=False)
    assert "acme_later" not in zoo.list_presets(published_only=True)
    with pytest.raises(zoo.HubAccessError, match="not published yet"):
        zoo.load_encoder("acme_later")
    with pytest.raises(ValueError, match="org/repo"):
        zoo.register_preset("bad", "no-slash")


# -- finetune.resolve_jit_compile -------------------------------------------------------


def test_resolve_jit_compile_by_backend_and_device():
    assert resolve_jit_compile(True) is True and resolve_jit_compile(False) is False
    backend = keras.config.backend()
    if backend == "jax":
        assert resolve_jit_compile("auto") is True
    elif backend == "tensorflow":
        assert resolve_jit_compile("auto") is bool(keras.distribution.list_devices("gpu"))
    else:
        assert resolve_jit_compile("auto") is False


# -- the `demo` and `zoo` subcommands ---------------------------------------------------


# `kerassl demo` is what `make demo` runs, on the default backend, and kerassl/demo.py holds
# nothing per backend; the CLI's backend-specific parts (`info`, `--precision`)
# and `kerassl pretrain`, `evaluate` and `finetune` end to end run on both backends
# (tests/test_demo_cli.py, tests/test_cli_scale.py). TensorFlow only, for the default
# suite's time (14 s of a worker's time on JAX).
@pytest.mark.skipif(keras.config.backend() != "tensorflow", reason="the demo runs on the default backend")
def test_cli_demo_writes_its_files_and_results(tmp_path, monkeypatch, capsys):
    # The recipe made tiny (300 digits of 8 px, width 8, 1 epoch): this checks the plumbing; the
    # demo's learning margin is the slow test in test_demo_cli.py.
    small = dict(demo.DEMO_RECIPE, image_size=8, width=8, projection_hidden_dim=16,
                 projection_dim=8, knn_k=5, labels_per_class=2)
    monkeypatch.setattr(demo, "DEMO_RECIPE", small)
    load_digits = demo.datasets.load_digits

    def few_digits(image_size):
        (x, y), (x_test, y_test) = load_digits(image_size=image_size)
        return (x[:300], y[:300]), (x_test[:100], y_test[:100])

    monkeypatch.setattr(demo.datasets, "load_digits", few_digits)
    monkeypatch.setattr(demo.evaluate, "linear_probe", functools.partial(demo.evaluate.linear_probe, epochs=3))
    assert cli.main(["demo", "--epochs", "1", "--output-dir", str(tmp_path), "--seed", "1"]) == 0
    out = capsys.readouterr().out
    assert "| random init (mean of 5) |" in out and "| SimCLR pretrained |" in out
    assert "random inits (seeds 1-5)" in out
    results = json.loads((tmp_path / "results.json").read_text())
    assert results["recipe"]["epochs"] == 1
    for key in ("random_init", "simclr"):
        assert 0.0 <= results[key]["knn_accuracy"] <= 1.0
    # The random-init row is the mean of five inits, each stored with its seed.
    inits = results["random_init"]["inits"]
    assert [init["seed"] for init in inits] == [1, 2, 3, 4, 5]
    for key in ("knn_accuracy", "linear_probe_accuracy"):
        assert results["random_init"][key] == pytest.approx(np.mean([init[key] for init in inits]))
    assert len({init["knn_accuracy"] for init in inits}) > 1, "the inits are not distinct draws"
    for name in ("views.png", "training.png", "encoder.keras"):
        assert (tmp_path / name).stat().st_size > 500
    encoder = keras.saving.load_model(tmp_path / "encoder.keras", safe_mode=True)
    assert encoder.output_shape[-1] > 0


def test_cli_zoo_subcommand_lists_presets(capsys):
    assert cli.main(["zoo", "list", "*simclr*"]) == 0
    out = capsys.readouterr().out
    assert "simclr_resnet18_cifar10" in out and "not yet published" in out
    assert cli.main(["zoo", "list", "--json", "*simclr*"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert [entry["name"] for entry in listed] == ["simclr_resnet18_cifar10"]


# -- zoo/rebuild.py -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def rebuild():
    spec = importlib.util.spec_from_file_location("zoo_rebuild", ROOT / "zoo" / "rebuild.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_rebuild_smoke_settings_and_refusals(rebuild):
    args = rebuild.parse_args(["simclr_resnet18_cifar10", "--smoke"])
    assert (args.epochs, args.train_limit, args.test_limit) == (1, 512, 512)
    with pytest.raises(SystemExit):
        rebuild.parse_args(["simclr_resnet18_cifar10", "--smoke", "--push"])
    with pytest.raises(SystemExit, match="entries: simclr_resnet18_cifar10"):
        rebuild.read_recipe("no_such_entry")
    assert rebuild.public_args(["x", "--token", "secret", "--token=s2", "--tag", "v1"]) == [
        "x", "--tag", "v1"
    ]


def test_rebuild_builds_the_recipe_it_reads(rebuild, tmp_path):
    folder, recipe = rebuild.read_recipe("simclr_resnet18_cifar10")
    assert folder.name == "simclr_resnet18_cifar10" and recipe["method"] == "SimCLR"
    recipe = dict(recipe, backbone="small_convnet", backbone_kwargs={"input_shape": [16, 16, 3], "width": 4})
    method = rebuild.build_method(recipe)
    assert isinstance(method, kerassl.SimCLR)
    assert method.temperature == recipe["method_kwargs"]["temperature"]
    assert method.projection_dim == recipe["method_kwargs"]["projection_dim"]
    optimizer = rebuild.make_optimizer(recipe, steps=10)
    assert isinstance(optimizer, keras.optimizers.SGD) and optimizer.momentum == 0.9
    with pytest.raises(SystemExit, match="knows SimCLR"):
        rebuild.build_method(dict(recipe, method="DINO"))
    rebuild.write_json_atomic(tmp_path / "m.json", {"a": 1})
    assert json.loads((tmp_path / "m.json").read_text()) == {"a": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["m.json"]
