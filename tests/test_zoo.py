"""kerassl.zoo end to end against a local Hub server (tests/hub_server.py).

Nothing of kerassl is mocked: the real huggingface_hub client talks HTTP to
the local server that tests/conftest_hub.py starts.
"""

import json
import pathlib
import uuid

import keras
import numpy as np
import pytest
from tests.conftest import random_images, tiny_encoder
from tests.conftest_hub import LOCAL_HUB_TOKEN, LOCAL_HUB_USER

import kerassl.zoo as zoo
from kerassl.zoo.card import parse_card

pytestmark = pytest.mark.usefixtures("local_hub")


@keras.saving.register_keras_serializable(package="kerassl_tests")
class TinyMethod(keras.Model):
    """A stand-in SSL method: an encoder plus a projection head."""

    def __init__(self, encoder, projection_dim=4, temperature=0.5, **kwargs):
        super().__init__(**kwargs)
        self.encoder = encoder
        self.projection_dim = projection_dim
        self.temperature = temperature
        self.head = keras.layers.Dense(projection_dim, name="head")

    def build(self, input_shape):
        if not self.encoder.built:
            self.encoder.build(input_shape)
        self.head.build(self.encoder.compute_output_shape(input_shape))
        self.built = True

    def call(self, images):
        return self.encoder(images)

    def get_config(self):
        config = super().get_config()
        config.update(
            encoder=keras.saving.serialize_keras_object(self.encoder),
            projection_dim=self.projection_dim,
            temperature=self.temperature,
        )
        return config

    @classmethod
    def from_config(cls, config):
        config = dict(config, encoder=keras.saving.deserialize_keras_object(config["encoder"]))
        return cls(**config)


def new_repo(stem="enc"):
    return f"{LOCAL_HUB_USER}/{stem}-{uuid.uuid4().hex[:8]}"


def images(n=6, size=16, seed=0):
    return random_images(n, size=size, seed=seed, dtype="float32")


def features(model, x):
    return keras.ops.convert_to_numpy(model(x, training=False))


def tiny_method(width=8):
    method = TinyMethod(tiny_encoder(width=width), projection_dim=4)
    method.build((None, 16, 16, 3))
    return method


def push(model, repo_id, **kwargs):
    kwargs.setdefault("token", LOCAL_HUB_TOKEN)
    return zoo.push_to_hub(model, repo_id, **kwargs)


# ---- push and load ------------------------------------------------------------------------


def test_push_then_load_gives_identical_embeddings(local_hub):
    encoder, repo_id = tiny_encoder(), new_repo()
    url = push(encoder, repo_id, metrics={"knn_accuracy": 0.5}, dataset="digits")
    assert url.startswith(f"{local_hub.url}/{repo_id}/commit/")
    loaded = zoo.load_encoder(f"hf://{repo_id}")
    x = images()
    np.testing.assert_allclose(features(loaded, x), features(encoder, x), rtol=0, atol=1e-6)
    assert loaded.trainable
    frozen = zoo.load_encoder(f"hf://{repo_id}", trainable=False)
    assert not frozen.trainable and not frozen.trainable_weights


def test_push_method_then_load_method_and_encoder(local_hub):
    method, repo_id = tiny_method(), new_repo("method")
    push(method, repo_id, dataset="digits")
    files = set(local_hub.repos[repo_id].commits[local_hub.repos[repo_id].branches["main"]]["files"])
    assert {"config.json", "model.weights.h5", "metadata.json", "README.md",
            "method/config.json", "method/model.weights.h5"} <= files

    restored = zoo.load_method(f"hf://{repo_id}")
    assert isinstance(restored, TinyMethod) and restored.temperature == 0.5
    for old, new in zip(method.weights, restored.weights):
        np.testing.assert_array_equal(keras.ops.convert_to_numpy(old), keras.ops.convert_to_numpy(new))
    encoder = zoo.load_encoder(f"hf://{repo_id}")
    assert not zoo.folder.is_method(encoder)
    x = images()
    np.testing.assert_allclose(features(encoder, x), features(method.encoder, x), atol=1e-6)


def test_real_simclr_round_trip(local_hub):
    import kerassl

    model = kerassl.SimCLR(tiny_encoder(), projection_hidden_dim=8, projection_dim=4, seed=1)
    model(images())  # builds
    repo_id = new_repo("simclr")
    push(model, repo_id, dataset="digits")
    restored = zoo.load_method(f"hf://{repo_id}")
    assert type(restored) is kerassl.SimCLR and restored.projection_dim == 4
    x = images()
    np.testing.assert_allclose(features(restored, x), features(model, x), atol=1e-6)
    text = pathlib.Path(zoo.hub.download(repo_id, allow_patterns=["README.md"]), "README.md").read_text()
    front, _ = parse_card(text)
    assert "simclr" in front["tags"]


def test_load_by_revision_tag_and_commit():
    repo_id = new_repo()
    first, second = tiny_encoder(), tiny_encoder()
    url_v1 = push(first, repo_id, tag="v1.0")
    push(second, repo_id, tag="v2.0")
    x = images()
    v1, v2 = features(first, x), features(second, x)
    assert not np.allclose(v1, v2)
    np.testing.assert_allclose(features(zoo.load_encoder(f"hf://{repo_id}@v1.0"), x), v1, atol=1e-6)
    np.testing.assert_allclose(features(zoo.load_encoder(f"hf://{repo_id}", revision="v1.0"), x), v1, atol=1e-6)
    np.testing.assert_allclose(features(zoo.load_encoder(f"hf://{repo_id}"), x), v2, atol=1e-6)
    sha = url_v1.rsplit("/", 1)[-1]
    np.testing.assert_allclose(features(zoo.load_encoder(f"hf://{repo_id}@{sha}"), x), v1, atol=1e-6)


def test_push_to_a_branch():
    repo_id = new_repo()
    main, experiment = tiny_encoder(), tiny_encoder()
    push(main, repo_id)
    push(experiment, repo_id, revision="experiment")
    x = images()
    np.testing.assert_allclose(features(zoo.load_encoder(f"hf://{repo_id}@experiment"), x),
                               features(experiment, x), atol=1e-6)
    np.testing.assert_allclose(features(zoo.load_encoder(f"hf://{repo_id}"), x), features(main, x), atol=1e-6)


def test_private_repo_with_and_without_token(monkeypatch):
    encoder, repo_id = tiny_encoder(), new_repo("private")
    push(encoder, repo_id, private=True)
    with pytest.raises(zoo.HubAccessError, match="private"):
        zoo.load_encoder(f"hf://{repo_id}")
    with pytest.raises(zoo.HubAccessError, match="private"):
        zoo.load_encoder(f"hf://{repo_id}", token=False)
    x = images()
    loaded = zoo.load_encoder(f"hf://{repo_id}", token=LOCAL_HUB_TOKEN)
    np.testing.assert_allclose(features(loaded, x), features(encoder, x), atol=1e-6)
    monkeypatch.setenv("HF_TOKEN", LOCAL_HUB_TOKEN)  # the usual way: token from the environment
    np.testing.assert_allclose(features(zoo.load_encoder(f"hf://{repo_id}"), x), features(encoder, x), atol=1e-6)


def test_push_without_token_is_refused():
    with pytest.raises(zoo.HubAccessError, match="write token"):
        zoo.push_to_hub(tiny_encoder(), new_repo(), token=False)


def test_offline_after_one_download(local_hub, monkeypatch):
    import huggingface_hub

    encoder, repo_id = tiny_encoder(), new_repo("offline")
    push(encoder, repo_id)
    zoo.load_encoder(f"hf://{repo_id}")  # populates the Hub cache
    # What HF_HUB_OFFLINE=1 sets at import; the client reads this constant on every call.
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    requests_before = len(local_hub.requests)
    x = images()
    np.testing.assert_allclose(features(zoo.load_encoder(f"hf://{repo_id}"), x), features(encoder, x), atol=1e-6)
    assert len(local_hub.requests) == requests_before
    never_downloaded = new_repo("never")
    with pytest.raises(zoo.HubAccessError, match="HF_HUB_OFFLINE=1"):
        zoo.load_encoder(f"hf://{never_downloaded}")


# ---- the card -----------------------------------------------------------------------------


def test_card_parses_as_hub_yaml_with_metrics_and_contract(local_hub):
    method, repo_id = tiny_method(), new_repo("card")
    protocol = "weighted kNN, k=20, on 8x8 digits"
    push(method, repo_id, dataset="digits", metrics={"knn_accuracy": {"value": 0.91, "protocol": protocol},
                                                      "linear_probe_accuracy": None})
    assert ("POST", "/api/validate-yaml") in local_hub.requests
    folder = zoo.hub.download(repo_id, allow_patterns=["README.md", "metadata.json"])
    front, body = parse_card(pathlib.Path(folder, "README.md").read_text())
    assert front["library_name"] == "keras"
    assert front["pipeline_tag"] == "image-feature-extraction"
    assert {"kerassl", "self-supervised", "tinymethod"} <= set(front["tags"])
    assert front["datasets"] == ["digits"] and front["license"] == "apache-2.0"
    contract = front["kerassl"]["input_contract"]
    assert contract["image_size"] == [16, 16] and contract["channels"] == 3
    assert contract["value_range"] == [0.0, 1.0]
    assert front["kerassl"]["metrics"] == {"knn_accuracy": 0.91, "linear_probe_accuracy": None}
    results = front["model-index"][0]["results"][0]
    assert results["metrics"] == [{"type": "knn_accuracy", "value": 0.91, "name": "kNN accuracy (frozen features)"}]
    assert protocol in body and "not yet measured" in body
    assert f'load_encoder("hf://{repo_id}")' in body and "| temperature | 0.5 |" in body
    metadata = json.loads(pathlib.Path(folder, "metadata.json").read_text())
    assert metadata["parameter_count"] == method.encoder.count_params()
    assert metadata["keras_version"] == keras.__version__


def test_metrics_must_be_finite_numbers(tmp_path):
    with pytest.raises(ValueError, match="finite"):
        zoo.save_preset(tiny_encoder(), tmp_path / "a", metrics={"knn_accuracy": float("nan")})
    with pytest.raises(TypeError, match="number or None"):
        zoo.save_preset(tiny_encoder(), tmp_path / "b", metrics={"knn_accuracy": "high"})
    assert list(tmp_path.iterdir()) == []


# ---- refusals -----------------------------------------------------------------------------


def test_missing_repo_and_missing_revision():
    with pytest.raises(zoo.HubAccessError, match="no such repository"):
        zoo.load_encoder(f"hf://{new_repo('absent')}")
    repo_id = new_repo()
    push(tiny_encoder(), repo_id, tag="v1.0")
    with pytest.raises(zoo.HubAccessError, match=r"no revision 'v9'.*tags: v1.0"):
        zoo.load_encoder(f"hf://{repo_id}@v9")


@pytest.mark.filterwarnings("ignore:Warnings while validating metadata")
def test_repo_that_is_not_a_kerassl_encoder(monkeypatch):
    monkeypatch.setenv("HF_TOKEN", LOCAL_HUB_TOKEN)
    repo_id = new_repo("plain-keras")
    tiny_encoder().save(f"hf://{repo_id}")  # Keras' own Hub format, no kerassl metadata
    with pytest.raises(zoo.NotAKerasslPresetError, match="plain Keras save"):
        zoo.load_encoder(f"hf://{repo_id}")
    # and a push onto it is refused: it would mix two models
    with pytest.raises(zoo.ArchitectureMismatchError, match="not saved by kerassl"):
        push(tiny_encoder(), repo_id)


def test_tampered_weights_fail_the_checksum_and_nothing_is_loaded(tmp_path, monkeypatch):
    import huggingface_hub

    repo_id = new_repo("tampered")
    push(tiny_encoder(), repo_id)
    other = tmp_path / "other.weights.h5"
    tiny_encoder(name="other").save_weights(str(other))
    huggingface_hub.HfApi(token=LOCAL_HUB_TOKEN).upload_file(
        path_or_fileobj=str(other), path_in_repo="model.weights.h5", repo_id=repo_id
    )
    calls = []
    original = keras.saving.deserialize_keras_object
    monkeypatch.setattr(keras.saving, "deserialize_keras_object", lambda *a, **k: calls.append(1) or original(*a, **k))
    with pytest.raises(zoo.ChecksumError, match="model.weights.h5: sha256"):
        zoo.load_encoder(f"hf://{repo_id}")
    assert calls == []  # refused before any model was built


def test_corrupt_local_folder_fails_the_checksum(tmp_path):
    folder = zoo.save_preset(tiny_encoder(), tmp_path / "entry")
    weights = folder / "model.weights.h5"
    data = bytearray(weights.read_bytes())
    data[len(data) // 2] ^= 0xFF
    weights.write_bytes(bytes(data))
    with pytest.raises(zoo.ChecksumError, match="nothing was loaded"):
        zoo.load_encoder(str(folder))


def test_keras_file_with_lambda_is_refused_by_safe_mode(tmp_path):
    inputs = keras.Input((16, 16, 3))
    x = keras.layers.Lambda(lambda t: t * 2.0)(inputs)
    outputs = keras.layers.GlobalAveragePooling2D()(x)
    path = tmp_path / "lambda.keras"
    keras.Model(inputs, outputs).save(str(path))
    with pytest.raises(zoo.UnsafePresetError, match="safe mode"):
        zoo.load_encoder(str(path))


def test_pushing_over_another_architecture_is_refused_unless_overwrite():
    repo_id = new_repo("arch")
    push(tiny_encoder(width=8), repo_id)
    narrower = tiny_encoder(width=4)
    with pytest.raises(zoo.ArchitectureMismatchError, match="architecture fingerprint differs"):
        push(narrower, repo_id)
    push(narrower, repo_id, overwrite=True)
    x = images()
    np.testing.assert_allclose(features(zoo.load_encoder(f"hf://{repo_id}"), x), features(narrower, x), atol=1e-6)


def test_encoder_push_removes_a_stale_method_folder(local_hub):
    repo_id = new_repo("stale")
    method = tiny_method()
    push(method, repo_id)
    push(method.encoder, repo_id)
    repo = local_hub.repos[repo_id]
    assert not any(p.startswith("method/") for p in repo.commits[repo.branches["main"]]["files"])
    with pytest.raises(zoo.NotAKerasslPresetError, match="holds only an encoder"):
        zoo.load_method(f"hf://{repo_id}")


def test_not_an_encoder_is_refused_at_save(tmp_path):
    inputs = keras.Input((16, 16, 3))
    feature_map = keras.Model(inputs, keras.layers.Conv2D(4, 3)(inputs))
    with pytest.raises(ValueError, match="one feature vector per image"):
        zoo.save_preset(feature_map, tmp_path / "x")
    assert list(tmp_path.iterdir()) == []


# ---- local files and presets --------------------------------------------------------------


def test_save_preset_folder_is_a_keras_preset_and_atomic(tmp_path):
    encoder = tiny_encoder()
    folder = zoo.save_preset(encoder, tmp_path / "entry", metrics={"knn_accuracy": 0.3})
    assert sorted(p.name for p in tmp_path.iterdir()) == ["entry"]  # no staging leftovers
    x = images()
    plain = keras.saving.load_model(str(folder), compile=False)  # plain Keras reads it too
    np.testing.assert_allclose(features(plain, x), features(encoder, x), atol=1e-6)
    with pytest.raises(FileExistsError, match="overwrite=True"):
        zoo.save_preset(encoder, folder)
    zoo.save_preset(tiny_encoder(width=4), folder, overwrite=True)
    assert zoo.load_encoder(str(folder)).output_shape == (None, 16)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["entry"]


def test_keras_files_of_methods_and_encoders(tmp_path):
    method = tiny_method()
    path = tmp_path / "method.keras"
    method.save(str(path))
    x = images()
    encoder = zoo.load_encoder(str(path))
    np.testing.assert_allclose(features(encoder, x), features(method.encoder, x), atol=1e-6)
    assert isinstance(zoo.load_method(str(path)), TinyMethod)
    method.encoder.save(str(tmp_path / "encoder.keras"))
    with pytest.raises(zoo.NotAKerasslPresetError, match="bare encoder"):
        zoo.load_method(str(tmp_path / "encoder.keras"))


def test_presets_registry():
    assert zoo.list_presets("*SIMCLR*") == ["simclr_resnet18_cifar10"]
    assert zoo.list_presets("*simclr*", published_only=True) == []
    with pytest.raises(zoo.PresetNotFoundError, match="Did you mean simclr_resnet18_cifar10"):
        zoo.get_preset("simclr_resnet18_cifar")
    with pytest.raises(zoo.PresetNotFoundError, match="hf://someone/thing"):
        zoo.load_encoder("someone/thing")


@pytest.mark.parametrize("name", zoo.list_presets())
def test_every_preset_entry_is_complete(name):
    entry = zoo.get_preset(name)
    # Official checkpoints (a "converter" entry) were trained by their authors: no recipe here.
    required = {"name", "description", "hub_id", "revision", "published", "method", "backbone",
                "dataset", "input_contract", "metrics", "license", "paper"}
    required |= {"converter"} if entry.get("converter") else {"recipe"}
    assert required <= set(entry) and entry["name"] == name
    assert entry["hub_id"].count("/") == 1
    assert {"image_size", "channels", "value_range", "mean", "std"} <= set(entry["input_contract"])
    if not entry.get("converter"):
        recipe = pathlib.Path(__file__).resolve().parents[1] / entry["recipe"]
        assert (recipe / "recipe.json").is_file() and (recipe / "metrics.json").is_file()
        # One source of truth: the recipe says how to train, the preset what the entry is.
        shared = {"hub_id", "method", "backbone", "backbone_kwargs", "dataset"}
        assert not shared & set(json.loads((recipe / "recipe.json").read_text()))
    if not entry["published"]:
        with pytest.raises(zoo.HubAccessError, match="not published yet"):
            zoo.load_encoder(name)


# ---- command line -------------------------------------------------------------------------


def test_cli_list_push_pull_card(tmp_path, capsys, monkeypatch):
    assert zoo.zoo_cli_main(["list", "*simclr*"]) == 0
    assert "simclr_resnet18_cifar10" in capsys.readouterr().out

    folder = zoo.save_preset(tiny_method(), tmp_path / "entry", dataset="digits")
    assert zoo.zoo_cli_main(["card", str(folder), "--repo-id", "me/x"]) == 0
    assert 'load_method("hf://me/x")' in capsys.readouterr().out

    monkeypatch.setenv("HF_TOKEN", LOCAL_HUB_TOKEN)
    repo_id = new_repo("cli")
    metrics = tmp_path / "metrics.json"
    metrics.write_text(json.dumps({"metrics": {"knn_accuracy": 0.42}, "dataset": "digits"}))
    assert zoo.zoo_cli_main(["push", str(folder), repo_id, "--metrics", str(metrics), "--tag", "v1"]) == 0
    assert "/commit/" in capsys.readouterr().out
    assert zoo.zoo_cli_main(["pull", f"hf://{repo_id}@v1", "--out", str(tmp_path / "pulled")]) == 0
    assert zoo.load_encoder(str(tmp_path / "pulled")).name == "tiny"
    assert zoo.zoo_cli_main(["pull", f"hf://{new_repo('absent')}"]) == 1
    assert "no such repository" in capsys.readouterr().err


# ---- every method's encoder is an encoder like any other ------------------------------------


def method_encoders():
    """The encoder of each method, as a user gets it after pretraining."""
    import kerassl
    from kerassl.text import TextEncoder, Tokenizer

    tokenizer = Tokenizer.from_texts(["a red square", "a blue square"], max_length=6)
    text_encoder = TextEncoder(tokenizer.vocab_size, max_length=6, width=8, depth=1, num_heads=2)
    flexible = lambda: tiny_encoder(input_shape=(None, None, 3))  # noqa: E731
    return {
        "simclr": kerassl.SimCLR(tiny_encoder(), projection_hidden_dim=8, projection_dim=4),
        "clip": kerassl.CLIP(tiny_encoder(), text_encoder, embed_dim=4, tokenizer=tokenizer),
        "rotnet": kerassl.RotNet(flexible(), hidden_dim=8),
        "autoencoder": kerassl.Autoencoder(tiny_encoder(), decoder_width=4),
        "mae": kerassl.MAE(kerassl.vit.vit(16, 4, 3, hidden_dim=16, depth=1, num_heads=2),
                           decoder_dim=8, decoder_depth=1, decoder_num_heads=2),
        "gan": kerassl.GAN(latent_dim=4, image_shape=(16, 16, 3), width=8),
    }


def test_each_method_encoder_pushes_loads_and_finetunes(local_hub):
    import kerassl

    x = images(8)
    labels = np.arange(8) % 2
    for name, method in method_encoders().items():
        encoder = method.encoder
        before = features(encoder, x)
        repo_id = new_repo(name)
        push(encoder, repo_id, dataset="digits")
        loaded = zoo.load_encoder(f"hf://{repo_id}")
        np.testing.assert_allclose(features(loaded, x), before, atol=1e-5, err_msg=name)
        classifier = kerassl.finetune(loaded, (x, labels), num_classes=2, epochs=1, verbose=0)
        assert classifier.predict(x, verbose=0).shape == (8, 2), name
