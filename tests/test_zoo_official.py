"""Official checkpoints (transformers layout) converted on load, against reference outputs.

The fixtures in tests/data/official/ are tiny random checkpoints written by
tests/fixtures/make_official_fixtures.py with torch + transformers (side
environment only), with the reference model's outputs on fixed images. Here they
are served by the local Hub under the official repo ids and revisions.
"""

import json
import os
import pathlib
import pickle
import zipfile

import keras
import numpy as np
import pytest
from keras import ops

import kerassl
from kerassl import zoo
from kerassl.zoo import convert
from kerassl.zoo.convert import weights
from kerassl.zoo.errors import ConversionError, HubAccessError, UnsafePresetError
from tests.conftest import infer

pytestmark = pytest.mark.usefixtures("local_hub")

DATA = pathlib.Path(__file__).parent / "data" / "official"
NATIVE, OTHER = 1e-4, 1e-3
# fixture -> (repo id, revision it is served at): official ids, pinned as the presets pin them.
SERVED = {
    "dino_vit": ("facebook/dino-vits16", "refs/pr/1"),
    "dino_vit_bin": ("facebook/dino-vits8", "main"),
    "msn": ("facebook/vit-msn-small", "main"),
    "ijepa": ("facebook/ijepa_vith14_1k", "main"),
    "dinov2": ("facebook/dinov2-small", "main"),
    "dinov2_swiglu": ("facebook/dinov2-giant", "main"),
    "dinov2_registers": ("facebook/dinov2-with-registers-small", "main"),
    "mae": ("facebook/vit-mae-base", "main"),
}


def files_of(name):
    return {p.name: p.read_bytes() for p in (DATA / name).iterdir() if p.name != "reference.npz"}


def serve(hub, name):
    """Serves a fixture as the official repo is laid out; returns 'hf://repo@revision'."""
    repo_id, revision = SERVED[name]
    if revision == "main":
        hub.seed(repo_id, files_of(name))
    else:
        # As the old DINO repos: main holds only pytorch_model.bin (the same weights, written by
        # torch.save); model.safetensors exists only on the pinned pull-request ref.
        main = files_of(name)
        del main["model.safetensors"]
        main["pytorch_model.bin"] = (DATA / "dino_vit_bin" / "pytorch_model.bin").read_bytes()
        hub.seed(repo_id, main)
        hub.seed(repo_id, {"model.safetensors": (DATA / name / "model.safetensors").read_bytes()}, revision)
    return f"hf://{repo_id}@{revision}"


def reference(name):
    return np.load(DATA / name / "reference.npz")


def features(encoder, images):
    return infer(encoder, images)


@pytest.mark.parametrize("name", sorted(SERVED))
def test_parity_with_the_reference_at_native_and_other_sizes(local_hub, name):
    source = serve(local_hub, name)
    ref = reference(name)
    encoder = zoo.load_encoder(source)
    native = np.abs(features(encoder, ref["images_native"]) - ref["features_native"]).max()
    assert native <= NATIVE, f"{name}: max abs diff {native:.2e} at the native size"
    for key, size in (("larger", 48), ("smaller", 24)):
        resized = zoo.load_encoder(source, image_size=size)
        assert resized.input_shape[1:3] == (size, size)
        diff = np.abs(features(resized, ref[f"images_{key}"]) - ref[f"features_{key}"]).max()
        assert diff <= OTHER, f"{name}: max abs diff {diff:.2e} at {size} px"


def test_a_preset_name_loads_its_pinned_revision_and_only_the_safetensors(local_hub):
    serve(local_hub, "dino_vit")
    local_hub.requests.clear()
    encoder = zoo.load_encoder("dino_vits16")
    ref = reference("dino_vit")
    assert np.abs(features(encoder, ref["images_native"]) - ref["features_native"]).max() <= NATIVE
    pinned = local_hub.repos["facebook/dino-vits16"].pulls["1"]
    asked = [path for _, path in local_hub.requests if "/resolve/" in path]
    assert f"/facebook/dino-vits16/resolve/{pinned}/model.safetensors" in asked, asked
    assert not any(path.endswith("pytorch_model.bin") for path in asked), asked


def test_a_bin_only_repo_is_read_without_torch(local_hub):
    serve(local_hub, "dino_vit_bin")
    encoder = zoo.load_encoder("dino_vits8")  # preset pinned to main, which holds only pytorch_model.bin
    ref = reference("dino_vit_bin")
    assert np.abs(features(encoder, ref["images_native"]) - ref["features_native"]).max() <= NATIVE
    same = weights.read_checkpoint(DATA / "dino_vit_bin")
    safe = weights.read_checkpoint(DATA / "dino_vit" / "model.safetensors")
    assert sorted(same) == sorted(safe)
    assert all(np.array_equal(same[key], safe[key]) for key in same)


def test_uint8_and_unit_float_images_give_the_same_features(local_hub):
    encoder = zoo.load_encoder(serve(local_hub, "dinov2_registers"))
    images = np.random.default_rng(0).integers(0, 256, (3, 32, 32, 3)).astype("uint8")
    from_uint8 = encoder.predict(images, verbose=0)
    from_float = encoder.predict(images.astype("float32") / 255.0, verbose=0)
    np.testing.assert_allclose(from_uint8, from_float, atol=1e-5)


def test_converted_encoder_saves_loads_in_safe_mode_and_finetunes(local_hub, tmp_path):
    encoder = zoo.load_encoder(serve(local_hub, "dinov2_swiglu"))
    images = reference("dinov2_swiglu")["images_native"]
    path = tmp_path / "encoder.keras"
    encoder.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True)
    np.testing.assert_allclose(features(loaded, images), features(encoder, images), atol=1e-6)
    x = np.random.default_rng(1).integers(0, 256, (8, 32, 32, 3)).astype("uint8")
    y = np.arange(8) % 2
    classifier = kerassl.finetune(encoder, (x, y), num_classes=2, epochs=1, batch_size=4, verbose=0)
    assert classifier.predict(x, verbose=0).shape == (8, 2)


def test_mae_method_holds_the_official_decoder(local_hub):
    serve(local_hub, "mae")
    mae = zoo.load_method("mae_vitb16")
    assert isinstance(mae, kerassl.MAE)
    ref = reference("mae")
    images = ops.convert_to_tensor(ref["method_images"])
    out = mae.masked_forward(images, training=False, noise=ops.convert_to_tensor(ref["method_noise"]))
    assert np.abs(ops.convert_to_numpy(out["predictions"]) - ref["method_logits"]).max() <= NATIVE
    np.testing.assert_array_equal(ops.convert_to_numpy(out["mask"]), ref["method_mask"])
    loss = float(mae.compute_loss(x=images, y_pred=out))
    assert abs(loss - float(ref["method_loss"])) <= NATIVE * max(1.0, abs(loss))
    recon, mask = mae.reconstruct(ref["method_images"], noise=ref["method_noise"])
    visible = np.repeat(np.repeat((1 - mask).reshape(2, 4, 4), 8, 1), 8, 2)[..., None] > 0
    np.testing.assert_allclose(np.where(visible, recon, 0), np.where(visible, ref["method_images"], 0), atol=1e-5)
    mae.compile(optimizer=keras.optimizers.AdamW(1e-4))
    history = mae.fit(ref["images_native"], epochs=1, batch_size=2, verbose=0)
    assert np.isfinite(history.history["loss"][0])


def test_zoo_pull_writes_a_kerassl_preset_folder(local_hub, tmp_path):
    serve(local_hub, "dino_vit")
    out = tmp_path / "dino"
    assert zoo.zoo_cli_main(["pull", "dino_vits16", "--out", str(out)]) == 0
    metadata = json.loads((out / "metadata.json").read_text())
    assert metadata["license"] == "apache-2.0"
    encoder = zoo.load_encoder(str(out))
    ref = reference("dino_vit")
    assert np.abs(features(encoder, ref["images_native"]) - ref["features_native"]).max() <= NATIVE


def test_pulled_mae_card_says_non_commercial_also_when_re_hosted(local_hub, tmp_path, monkeypatch):
    from tests.conftest_hub import LOCAL_HUB_TOKEN, LOCAL_HUB_USER

    serve(local_hub, "mae")
    out = tmp_path / "mae"
    assert zoo.zoo_cli_main(["pull", "mae_vitb16", "--out", str(out)]) == 0
    card = (out / "README.md").read_text()
    assert "license: cc-by-nc-4.0" in card and "non-commercial" in card
    metadata = json.loads((out / "metadata.json").read_text())
    assert metadata["input_contract"]["mean"] == [0.485, 0.456, 0.406]
    assert isinstance(zoo.load_method(str(out)), kerassl.MAE)
    monkeypatch.setenv("HF_TOKEN", LOCAL_HUB_TOKEN)
    repo_id = f"{LOCAL_HUB_USER}/mae-rehosted"
    assert zoo.zoo_cli_main(["push", str(out), repo_id]) == 0
    repo = local_hub.repos[repo_id]
    assert b"license: cc-by-nc-4.0" in repo.commits[repo.branches["main"]]["files"]["README.md"]


def test_list_shows_licenses(capsys):
    assert "dino_vits16" in zoo.list_presets("dino*", published_only=True)
    licenses = dict((name, license) for name, license, _ in zoo.list_presets("mae*", details=True))
    assert licenses["mae_vitb16"] == "cc-by-nc-4.0 (non-commercial)"
    assert zoo.zoo_cli_main(["list", "mae*"]) == 0
    printed = capsys.readouterr().out
    assert "mae_vitb16" in printed and "cc-by-nc-4.0 (non-commercial)" in printed


def test_every_official_preset_names_its_contract_and_source():
    for name in zoo.list_presets():
        entry = zoo.get_preset(name)
        if not entry.get("converter"):
            continue
        assert entry["published"] and entry["hub_id"].count("/") == 1 and entry["revision"]
        assert entry["revision_provenance"] and entry["license"] and entry["parameter_count"] > 1e7
        assert entry["paper"].startswith("https://arxiv.org/") and "source" in entry["paper_result"]
        assert entry["input_contract"]["mean"] and entry["input_contract"]["std"]
        assert entry["converter"] in set(convert.CONVERTERS.values())


# ---- refusals ------------------------------------------------------------------------------


def _repo_folder(tmp_path, name, config_change=None, drop=None):
    folder = tmp_path / name
    folder.mkdir()
    for path in (DATA / name).iterdir():
        (folder / path.name).write_bytes(path.read_bytes())
    if config_change:
        config = json.loads((folder / "config.json").read_text())
        config.update(config_change)
        (folder / "config.json").write_text(json.dumps(config))
    if drop:
        from safetensors.numpy import save_file

        tensors = weights.read_checkpoint(folder / "model.safetensors")
        del tensors[drop]
        save_file(tensors, str(folder / "model.safetensors"))
    return folder


def test_unknown_model_type_is_refused(tmp_path):
    folder = _repo_folder(tmp_path, "dino_vit", config_change={"model_type": "swin"})
    with pytest.raises(ConversionError, match="model_type 'swin'.*Supported: .*dinov2"):
        zoo.load_encoder(str(folder))


def test_missing_weight_is_refused(tmp_path):
    folder = _repo_folder(tmp_path, "dinov2", drop="encoder.layer.1.layer_scale2.lambda1")
    with pytest.raises(ConversionError, match="no weight 'encoder.layer.1.layer_scale2.lambda1'"):
        zoo.load_encoder(str(folder))


def test_shape_mismatch_is_refused(tmp_path):
    folder = _repo_folder(tmp_path, "msn", config_change={"intermediate_size": 96})
    with pytest.raises(ConversionError, match=r"shape \(32, 64\).*expects \(32, 96\)"):
        zoo.load_encoder(str(folder))


class _RunsCode:
    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_a_bin_that_would_run_code_is_refused(tmp_path):
    marker = tmp_path / "pwned"
    payload = _RunsCode()
    payload.marker = marker
    path = tmp_path / "pytorch_model.bin"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("archive/data.pkl", pickle.dumps({"weight": payload}, protocol=2))
    with pytest.raises(UnsafePresetError, match=r"(posix|nt)\.system"):
        weights.read_checkpoint(path)
    assert not marker.exists()
    plain = tmp_path / "plain.bin"
    plain.write_bytes(pickle.dumps({"weight": payload}))
    with pytest.raises(ConversionError, match="not a zip-format"):
        weights.read_checkpoint(plain)
    assert not marker.exists()


def test_a_revision_that_does_not_exist_is_refused(local_hub):
    serve(local_hub, "dino_vit")
    with pytest.raises(HubAccessError, match="no revision 'refs/pr/99'"):
        zoo.load_encoder("hf://facebook/dino-vits16@refs/pr/99")


def test_image_size_must_be_a_multiple_of_the_patch(local_hub):
    with pytest.raises(ConversionError, match="not a multiple of the patch size 8"):
        zoo.load_encoder(serve(local_hub, "ijepa"), image_size=30)


def test_mae_method_needs_the_decoder(tmp_path):
    with pytest.raises(ConversionError, match="holds only an encoder"):
        zoo.load_method(str(_repo_folder(tmp_path, "dino_vit")))


# ---- readers and the local Hub -------------------------------------------------------------


def test_bfloat16_safetensors_are_widened_to_float32(tmp_path):
    values = np.array([1.0, -2.5, 3.140625], "float32")
    raw = (values.view("<u4") >> 16).astype("<u2").tobytes()
    header = json.dumps({"w": {"dtype": "BF16", "shape": [3], "data_offsets": [0, len(raw)]}}).encode()
    path = tmp_path / "model.safetensors"
    path.write_bytes(len(header).to_bytes(8, "little") + header + raw)
    np.testing.assert_array_equal(weights.read_checkpoint(path)["w"], values)


def test_local_hub_serves_pull_request_refs(local_hub):
    import huggingface_hub

    local_hub.seed("facebook/some-model", {"config.json": b"{}"})
    local_hub.seed("facebook/some-model", {"model.safetensors": b"abc"}, revision="refs/pr/2")
    path = huggingface_hub.hf_hub_download("facebook/some-model", "model.safetensors", revision="refs/pr/2")
    assert pathlib.Path(path).read_bytes() == b"abc"
    with pytest.raises(huggingface_hub.errors.EntryNotFoundError):
        huggingface_hub.hf_hub_download("facebook/some-model", "model.safetensors")


def test_lazy_safetensors_reading_gives_the_same_tensors():
    lazy = weights.open_checkpoint(DATA / "dinov2")
    eager = weights.read_checkpoint(DATA / "dinov2")
    assert isinstance(lazy, weights.LazySafetensors) and sorted(lazy) == sorted(eager) and len(lazy) == len(eager)
    assert all(np.array_equal(lazy[name], eager[name]) for name in eager)
    assert "nothing" not in lazy
    assert isinstance(weights.open_checkpoint(DATA / "dino_vit_bin"), dict)
