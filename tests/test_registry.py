"""Every class registered under `kerassl>` loads back as itself; names are never shared."""

import pathlib
import re

import keras
import pytest

import kerassl
from kerassl import registry
from kerassl.finetune import Classifier, ScaledAdamW


def tiny_encoder(shape=(8, 8, 3)):
    return kerassl.backbones.small_convnet(input_shape=shape, width=4, feature_dim=8)


def tiny_vit():
    return kerassl.backbones.vit(input_shape=(8, 8, 3), patch_size=4, hidden_dim=8, depth=1,
                                 num_heads=2)


def tiny_text_encoder():
    return kerassl.text.TextEncoder(300, max_length=8, width=16, depth=1, num_heads=2)


# One small instance per registered class. A class registered without an entry
# here fails test_every_registered_class_has_an_example.
CLIP_BPE = pathlib.Path(__file__).parent / "data" / "official_clip" / "bpe"


def _clip_tokenizer():
    import gzip
    import tempfile

    from kerassl.clip_bpe import CLIPTokenizer

    folder = pathlib.Path(tempfile.mkdtemp())
    for name in ("vocab.json", "merges.txt"):
        (folder / name).write_bytes(gzip.decompress((CLIP_BPE / f"{name}.gz").read_bytes()))
    return CLIPTokenizer.from_files(folder / "vocab.json", folder / "merges.txt", max_length=8)


EXAMPLES = {
    "kerassl>RandomResizedCrop": lambda: kerassl.augment.RandomResizedCrop(8, seed=1),
    "kerassl>ColorJitter": lambda: kerassl.augment.ColorJitter(seed=1),
    "kerassl>RandomApply": lambda: kerassl.augment.RandomApply(
        kerassl.augment.RandomGrayscale(1.0), 0.5, seed=1
    ),
    "kerassl>RandomGrayscale": lambda: kerassl.augment.RandomGrayscale(0.2, seed=1),
    "kerassl>MultiHeadSelfAttention": lambda: kerassl.vit.MultiHeadSelfAttention(8, 2),
    "kerassl>ViTTransformerBlock": lambda: kerassl.vit.TransformerBlock(8, 2),
    "kerassl>VisionTransformer": lambda: kerassl.vit.VisionTransformer(
        8, 4, 3, hidden_dim=8, depth=1, num_heads=2
    ),
    "kerassl>Tokenizer": lambda: kerassl.text.Tokenizer(["a cat", "a dog"], max_length=8),
    "kerassl>CLIPTokenizer": lambda: _clip_tokenizer(),
    "kerassl>TextTransformerBlock": lambda: kerassl.text.TransformerBlock(2, 16),
    "kerassl>TextEncoder": tiny_text_encoder,
    "kerassl>ToFloatImages": lambda: kerassl.evaluate.ToFloatImages(),
    "kerassl>MLPHead": lambda: kerassl.heads.MLPHead([8, 4]),
    "kerassl>DINOHead": lambda: kerassl.heads.DINOHead(8, 4, 16),
    "kerassl>SSLMethod": lambda: kerassl.SSLMethod(tiny_encoder()),
    "kerassl>Autoencoder": lambda: kerassl.Autoencoder(tiny_encoder()),
    "kerassl>ClampLogitScale": lambda: kerassl.methods.clip.ClampLogitScale(50.0),
    "kerassl>CLIP": lambda: kerassl.CLIP(
        tiny_encoder(), tiny_text_encoder(), embed_dim=8,
        tokenizer=kerassl.text.Tokenizer(["a cat", "a dog"], max_length=8),
    ),
    "kerassl>ZeroShotClassifier": lambda: kerassl.methods.ZeroShotClassifier(
        tiny_encoder(), keras.layers.Dense(4), ["cat", "dog"],
    ),
    "kerassl>DINO": lambda: kerassl.DINO(
        tiny_encoder(), head_hidden_dim=8, head_bottleneck_dim=4, head_output_dim=16
    ),
    "kerassl>GAN": lambda: kerassl.GAN(latent_dim=4, image_shape=(8, 8, 3), width=4),
    "kerassl>Jigsaw": lambda: kerassl.Jigsaw(tiny_encoder((12, 12, 3)), grid=2, num_permutations=4),
    "kerassl>MAE": lambda: kerassl.MAE(tiny_vit(), decoder_dim=8, decoder_depth=1, decoder_num_heads=2),
    "kerassl>RotNet": lambda: kerassl.RotNet(tiny_encoder(), hidden_dim=8),
    "kerassl>SimCLR": lambda: kerassl.SimCLR(tiny_encoder(), projection_hidden_dim=8, projection_dim=4),
    "kerassl>RandomSolarize": lambda: kerassl.augment.RandomSolarize(0.2, seed=1),
    "kerassl>Prototypes": lambda: kerassl.heads.Prototypes(16),
    "kerassl>UnitNormal": lambda: kerassl.teacher.UnitNormal(seed=1),
    "kerassl>MemoryBank": lambda: kerassl.teacher.MemoryBank(16, 4, seed=1),
    "kerassl>BYOL": lambda: kerassl.BYOL(tiny_encoder(), projection_hidden_dim=8, projection_dim=4, prediction_hidden_dim=8),
    "kerassl>MoCo": lambda: kerassl.MoCo(tiny_encoder(), version="v2", projection_hidden_dim=8, projection_dim=4, queue_size=16),
    "kerassl>SimSiam": lambda: kerassl.SimSiam(tiny_encoder(), projection_hidden_dim=8, projection_dim=4, prediction_hidden_dim=8),
    "kerassl>BarlowTwins": lambda: kerassl.BarlowTwins(tiny_encoder(), projection_hidden_dim=8, projection_dim=4),
    "kerassl>VICReg": lambda: kerassl.VICReg(tiny_encoder(), projection_hidden_dim=8, projection_dim=4),
    "kerassl>SwAV": lambda: kerassl.SwAV(tiny_encoder(), projection_hidden_dim=8, projection_dim=4, num_prototypes=8, num_local_crops=0),
    "kerassl>NNCLR": lambda: kerassl.NNCLR(tiny_encoder(), projection_hidden_dim=8, projection_dim=4, prediction_hidden_dim=8, queue_size=16),
    "kerassl>ScaledAdamW": lambda: ScaledAdamW(1e-3, 0.1),
    "kerassl>Classifier": lambda: Classifier(
        tiny_encoder(), keras.layers.Dense(3)
    ),
}


def test_every_registered_class_has_an_example():
    assert set(registry.registered_classes()) == set(EXAMPLES)


@pytest.mark.parametrize("name", sorted(EXAMPLES))
def test_registered_class_round_trips_as_itself(name):
    cls = registry.registered_classes()[name]
    obj = EXAMPLES[name]()
    assert type(obj) is cls
    config = keras.saving.serialize_keras_object(obj)
    assert config["registered_name"] == name
    loaded = keras.saving.deserialize_keras_object(config, safe_mode=True)
    assert type(loaded) is cls
    assert keras.saving.serialize_keras_object(loaded)["config"].keys() == config["config"].keys()


def test_a_taken_name_is_refused():
    with pytest.raises(ValueError, match="kerassl>MLPHead.*already registered"):

        @registry.register(name="MLPHead")
        class Impostor(keras.layers.Layer):
            pass


def test_the_release_0_1_0_block_name_loads_the_block_its_config_describes():
    text_config = keras.saving.serialize_keras_object(kerassl.text.TransformerBlock(2, 16))
    vit_config = keras.saving.serialize_keras_object(kerassl.vit.TransformerBlock(8, 2))
    for config, cls in ((text_config, kerassl.text.TransformerBlock),
                        (vit_config, kerassl.vit.TransformerBlock)):
        config = {**config, "registered_name": "kerassl>TransformerBlock"}
        assert type(keras.saving.deserialize_keras_object(config, safe_mode=True)) is cls
    broken = {**text_config, "registered_name": "kerassl>TransformerBlock", "config": {"name": "x"}}
    with pytest.raises(ValueError, match="kerassl 0.1.0"):
        keras.saving.deserialize_keras_object(broken, safe_mode=True)


def test_the_registry_knows_every_module_that_registers_a_class():
    package = pathlib.Path(kerassl.__file__).parent
    registering = set()
    for path in package.rglob("*.py"):
        if re.search(r"^@register\b", path.read_text(), re.MULTILINE):
            parts = path.relative_to(package.parent).with_suffix("").parts
            registering.add(".".join(parts))
    assert registering - {"kerassl.registry"} == set(registry.registered_modules())
