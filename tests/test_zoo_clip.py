"""OpenAI CLIP checkpoints as kerassl encoders and methods, against transformers' CLIPModel.

The tiny random CLIPModel in tests/data/official_clip/tiny (hidden 32, 2 layers
per tower, the first 2000 OpenAI merges) and its reference outputs come from
tests/fixtures/make_clip_fixtures.py (transformers 5.25, torch 2.14); the local
Hub serves it as `openai/clip-vit-base-patch32`. No torch here.
"""

import json
import pathlib

import keras
import numpy as np
import pytest

import kerassl
from kerassl.clip_bpe import CLIPTokenizer
from kerassl.zoo.convert import clip as clip_converter
from kerassl.zoo.convert.weights import read_checkpoint
from kerassl.zoo.errors import ConversionError
from kerassl.zoo.pull import pull_official
from tests.hub_server import Repo

DATA = pathlib.Path(__file__).parent / "data" / "official_clip"
TINY = DATA / "tiny"
REPO = "openai/clip-vit-base-patch32"
SOURCE = f"hf://{REPO}"
# The captions the fixture script ran through transformers (its CAPTIONS).
CAPTIONS = ["a photo of a cat.", "a photo of a dog!", "the red car, parked", "", "café in paris"]
NATIVE, OTHER = 32, 48


@pytest.fixture(scope="module")
def reference():
    return dict(np.load(DATA / "tiny_reference.npz"))


@pytest.fixture
def clip_repo(local_hub):
    """The tiny checkpoint, every file as save_pretrained wrote it, on the local Hub."""
    with local_hub.lock:
        repo = local_hub.repos.setdefault(REPO, Repo(REPO, private=False, owner="openai"))
        if not repo.branches:
            repo.commit({p.name: p.read_bytes() for p in TINY.iterdir()}, "tiny random CLIPModel")
    return repo


@pytest.fixture(scope="module")
def checkpoint():
    config = json.loads((TINY / "config.json").read_text())
    preprocessor = json.loads((TINY / "preprocessor_config.json").read_text())
    files = {name: TINY / name for name in clip_converter.TOKENIZER_FILES}
    return config, read_checkpoint(TINY / "model.safetensors"), preprocessor, files


def max_diff(a, b):
    return float(np.max(np.abs(np.asarray(a, "float64") - np.asarray(b, "float64"))))


def test_method_matches_transformers_at_native_size(clip_repo, reference):
    clip = kerassl.zoo.load_method(SOURCE)
    assert isinstance(clip, kerassl.CLIP) and isinstance(clip.tokenizer, CLIPTokenizer)
    images = reference[f"images_{NATIVE}"]
    ids = clip.tokenizer(CAPTIONS)
    for ours, theirs in zip(ids, reference["input_ids"]):  # theirs pad with the end id, ours 0
        end = int(np.argmax(theirs)) + 1
        assert ours[:end].tolist() == theirs[:end].tolist() and not ours[end:].any()
    # kerassl refuses empty captions as strings; as ids (from our tokenizer) they run.
    image_z, text_z = clip.encode_image(images), clip.encode_text(ids)
    scale = float(keras.ops.convert_to_numpy(clip.logit_scale()))
    assert max_diff(image_z, reference[f"image_embeds_{NATIVE}"]) <= 1e-4
    assert max_diff(text_z, reference["text_embeds"]) <= 1e-4
    assert max_diff(scale * image_z @ text_z.T, reference[f"logits_per_image_{NATIVE}"]) <= 1e-4
    # predict() gives the vision tower's pooled feature (post-LayerNorm CLS), like every method.
    features = clip.predict(images, verbose=0)
    assert max_diff(features, reference[f"vision_features_{NATIVE}"]) <= 1e-4


def test_encoder_matches_transformers_native_and_interpolated(clip_repo, reference):
    encoder = kerassl.zoo.load_encoder(SOURCE)
    images = reference[f"images_{NATIVE}"]
    embeddings = encoder.predict(images, verbose=0)
    assert embeddings.shape == (3, 16)
    np.testing.assert_allclose(np.linalg.norm(embeddings, axis=1), 1.0, atol=1e-5)
    assert max_diff(embeddings, reference[f"image_embeds_{NATIVE}"]) <= 1e-4
    uint8 = np.round(images * 255).astype("uint8")
    assert max_diff(encoder.predict(uint8, verbose=0), encoder.predict(uint8 / 255.0, verbose=0)) <= 1e-5
    resized = kerassl.zoo.load_encoder(SOURCE, image_size=OTHER)
    assert resized.input_shape == (None, OTHER, OTHER, 3)
    other = resized.predict(reference[f"images_{OTHER}"], verbose=0)
    assert max_diff(other, reference[f"image_embeds_{OTHER}"]) <= 1e-3


def test_method_at_another_size_and_zero_shot(checkpoint, reference):
    config, tensors, preprocessor, files = checkpoint
    clip = clip_converter.method_from_checkpoint(config, tensors, preprocessor, files, image_size=OTHER)
    images = reference[f"images_{OTHER}"]
    logits = reference[f"logits_per_image_{OTHER}"]
    scale = float(keras.ops.convert_to_numpy(clip.logit_scale()))
    image_z, text_z = clip.encode_image(images), clip.encode_text(clip.tokenizer(CAPTIONS))
    assert max_diff(scale * image_z @ text_z.T, logits) <= 1e-3
    # With the template "{}" the class texts are the reference captions, so the zero-shot
    # probabilities are transformers' softmax over those logits.
    names = [CAPTIONS[i] for i in (0, 1, 2, 4)]
    classifier = clip.zero_shot_classifier(names, templates=["{}"])
    probabilities = classifier.predict(images, verbose=0)
    picked = logits[:, [0, 1, 2, 4]]
    expected = np.exp(picked - picked.max(1, keepdims=True))
    expected /= expected.sum(1, keepdims=True)
    assert probabilities.shape == (3, 4)
    assert max_diff(probabilities, expected) <= 1e-3
    # Retrieval: image i with caption i, ranked as transformers' embeddings rank them.
    recall = kerassl.evaluate.retrieval_recall(clip, images, CAPTIONS[:3], k=(1, 2))
    theirs = kerassl.retrieval.recall_at_k(
        reference[f"image_embeds_{OTHER}"], reference["text_embeds"][:3], np.arange(3), k=(1, 2)
    )
    assert recall == theirs


def test_converted_method_saves_and_loads_in_safe_mode(checkpoint, reference, tmp_path):
    config, tensors, preprocessor, files = checkpoint
    clip = clip_converter.method_from_checkpoint(config, tensors, preprocessor, files)
    path = tmp_path / "clip.keras"
    clip.save(path)
    restored = keras.saving.load_model(path, safe_mode=True)
    assert isinstance(restored.tokenizer, CLIPTokenizer)
    texts = ["a photo of a cat.", "émoji 🐱 &amp; more"]
    np.testing.assert_array_equal(restored.tokenizer(texts), clip.tokenizer(texts))
    assert max_diff(restored.encode_text(texts), clip.encode_text(texts)) <= 1e-6
    images = reference[f"images_{NATIVE}"]
    assert max_diff(restored.encode_image(images), clip.encode_image(images)) <= 1e-6


@pytest.mark.slow
def test_converted_method_keeps_training(checkpoint, reference):
    config, tensors, preprocessor, files = checkpoint
    clip = clip_converter.method_from_checkpoint(config, tensors, preprocessor, files)
    texts = ["a photo of a cat.", "émoji 🐱 &amp; more"]
    before = clip.encode_text(texts)
    clip.compile(optimizer=keras.optimizers.SGD(0.1))
    images = reference[f"images_{NATIVE}"]
    history = clip.fit(images, ["a cat", "a dog", "a car"], batch_size=3, epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][0])
    assert max_diff(clip.encode_text(texts), before) > 0  # the text tower trained


def test_refusals_name_the_problem(checkpoint, tmp_path):
    config, tensors, preprocessor, files = checkpoint
    missing = {k: v for k, v in tensors.items() if k != "text_projection.weight"}
    with pytest.raises(ConversionError, match="text_projection.weight"):
        clip_converter.method_from_checkpoint(config, missing, preprocessor, files)
    wrong = dict(tensors)
    wrong["vision_model.post_layernorm.weight"] = np.ones(31, "float32")
    with pytest.raises(ConversionError, match="post_layernorm.weight"):
        clip_converter.encoder_from_checkpoint(config, wrong, preprocessor)
    with pytest.raises(ConversionError, match="vocab.json"):
        clip_converter.method_from_checkpoint(config, tensors, preprocessor, None)
    small = {**config, "text_config": {**config["text_config"], "vocab_size": 100}}
    with pytest.raises(ConversionError, match="vocab"):
        clip_converter.method_from_checkpoint(small, tensors, preprocessor, files)
    eos = {**config, "text_config": {**config["text_config"], "eos_token_id": 7}}
    with pytest.raises(ConversionError, match="eos_token_id"):
        clip_converter.method_from_checkpoint(eos, tensors, preprocessor, files)
    gelu = {**config, "vision_config": {**config["vision_config"], "hidden_act": "relu"}}
    with pytest.raises(ConversionError, match="hidden_act"):
        clip_converter.encoder_from_checkpoint(gelu, tensors, preprocessor)
    with pytest.raises(ConversionError, match="multiple of the patch size"):
        clip_converter.encoder_from_checkpoint(config, tensors, preprocessor, image_size=30)


def test_presets_load_as_encoder_and_method(clip_repo, monkeypatch, reference):
    # The presets pin OpenAI's commits, which the local Hub cannot serve: point them at main.
    from kerassl.zoo.presets import PRESETS

    monkeypatch.setitem(PRESETS, "clip_vitb32", {**PRESETS["clip_vitb32"], "revision": "main"})
    entry = kerassl.zoo.get_preset("clip_vitb32")
    assert entry["license"] == "mit" and entry["converter"] == "kerassl.zoo.convert.clip"
    assert set(kerassl.zoo.list_presets("clip*")) == {"clip_vitb32", "clip_vitb16", "clip_vitl14"}
    encoder = kerassl.zoo.load_encoder("clip_vitb32")
    images = reference[f"images_{NATIVE}"]
    assert max_diff(encoder.predict(images, verbose=0), reference[f"image_embeds_{NATIVE}"]) <= 1e-4
    clip = kerassl.zoo.load_method("clip_vitb32")
    zero_shot = clip.zero_shot_classifier(["cat", "dog"])
    probabilities = zero_shot.predict(images, verbose=0)
    assert probabilities.shape == (3, 2)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, atol=1e-5)
    text = clip.encode_text(["a photo of a cat"])
    assert text.shape == (1, 16)
    np.testing.assert_allclose(np.linalg.norm(text, axis=1), 1.0, atol=1e-5)


def test_pull_converts_once_into_a_kerassl_preset_folder(clip_repo, tmp_path, reference):
    out = pull_official(SOURCE, tmp_path / "clip_vitb32")
    clip = kerassl.zoo.load_method(str(out))
    assert isinstance(clip, kerassl.CLIP) and isinstance(clip.tokenizer, CLIPTokenizer)
    image_z = clip.encode_image(reference[f"images_{NATIVE}"])
    assert max_diff(image_z, reference[f"image_embeds_{NATIVE}"]) <= 1e-4
    text_z = clip.encode_text(clip.tokenizer(CAPTIONS))
    assert max_diff(text_z, reference["text_embeds"]) <= 1e-4
