"""Bad input, table-driven: every public entry point answers with a clear error.

Each row: an id, a call that must fail, the error class expected, and a word
the message must contain (the problem or the fix). The README lists this
table; `python -m tests.test_bad_inputs` prints it as Markdown and counts the
rows that pass.
"""

import math

import keras
import numpy as np
import pytest

import kerassl
from kerassl import augment, datasets, losses
from kerassl.evaluate import extract_features, knn_accuracy, linear_probe, recall_at_k

U8 = np.zeros((8, 16, 16, 3), "uint8")
LABELS = np.arange(8) % 2


def enc(shape=(16, 16, 3)):
    inputs = keras.Input(shape)
    x = keras.layers.Conv2D(4, 3, padding="same")(inputs)
    return keras.Model(inputs, keras.layers.GlobalAveragePooling2D()(x))


def feature_map_encoder():
    inputs = keras.Input((16, 16, 3))
    return keras.Model(inputs, keras.layers.Conv2D(4, 3)(inputs))


def vit():
    return kerassl.vit.vit(16, patch_size=4, channels=3, hidden_dim=8, depth=1, num_heads=2)


def simclr(**kwargs):
    model = kerassl.SimCLR(enc(), 8, 8, seed=0, **kwargs)
    model.compile(optimizer="adam")
    return model


def f32(values):
    return np.asarray(values, "float32")


def tf_dataset(element):
    import tensorflow as tf

    return tf.data.Dataset.from_tensor_slices(element).batch(4)


def nan_images(count=300, index=280):
    x = np.zeros((count, 16, 16, 3), "float32")
    x[index, 0, 0, 0] = np.nan
    return x


def fit(model, *args, **kwargs):
    kwargs.setdefault("verbose", 0)
    return model.fit(*args, **kwargs)


def clip_model():
    from kerassl.text import TextEncoder, Tokenizer

    tokenizer = Tokenizer.from_texts(["a red square", "a blue square"], max_length=8)
    text = TextEncoder(tokenizer.vocab_size, max_length=8, width=8, depth=1, num_heads=2)
    model = kerassl.CLIP(enc(), text, embed_dim=8, tokenizer=tokenizer)
    model.compile(optimizer="adam")
    return model


def write(path, data):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


# (id, call(tmp_path), error class, word the message must contain)
CASES = [
    # -- images through fit / evaluate / predict of a method
    ("fit rank-3 images", lambda t: fit(simclr(), U8[0]), ValueError, "rank-4"),
    ("fit rank-5 images", lambda t: fit(simclr(), U8[None]), ValueError, "rank-4"),
    ("fit 4 channels", lambda t: fit(simclr(), np.zeros((8, 16, 16, 4), "uint8")), ValueError, "channels"),
    ("fit channels-first", lambda t: fit(simclr(), np.zeros((8, 3, 16, 16), "uint8")), ValueError, "transpose"),
    ("fit int64 images", lambda t: fit(simclr(), U8.astype("int64")), TypeError, "uint8"),
    ("fit bool images", lambda t: fit(simclr(), U8.astype(bool)), TypeError, "uint8"),
    ("fit float 0-255", lambda t: fit(simclr(), U8.astype("float32") + 200), ValueError, "255"),
    ("fit negative floats", lambda t: fit(simclr(), U8.astype("float32") - 3), ValueError, "[0, 1]"),
    ("fit NaN past image 256", lambda t: fit(simclr(), nan_images()), ValueError, "images[280]"),
    ("fit inf pixel", lambda t: fit(simclr(), f32(np.full((8, 16, 16, 3), np.inf))), ValueError, "infinite"),
    ("fit empty array", lambda t: fit(simclr(), U8[:0]), ValueError, "empty"),
    ("fit None", lambda t: fit(simclr(), None), ValueError, "no data"),
    ("fit dict without images", lambda t: fit(simclr(), {"image": U8}), ValueError, "'images'"),
    ("fit dataset of dicts without images", lambda t: fit(simclr(), tf_dataset({"pixels": U8})), ValueError, "'images'"),
    ("fit float probe labels", lambda t: fit(simclr(num_classes=3), U8, LABELS + 0.5), ValueError, "whole"),
    ("fit probe labels out of range", lambda t: fit(simclr(num_classes=2), U8, LABELS + 5), ValueError, "num_classes"),
    ("fit negative probe labels", lambda t: fit(simclr(num_classes=2), U8, LABELS - 3), ValueError, "[0, 2)"),
    ("fit one-hot probe labels", lambda t: fit(simclr(num_classes=2), U8, np.eye(2)[LABELS]), ValueError, "argmax"),
    ("fit too few probe labels", lambda t: fit(simclr(num_classes=2), U8, LABELS[:3]), ValueError, "per image"),
    ("fit NaN probe labels", lambda t: fit(simclr(num_classes=2), U8, f32([np.nan] * 8)), ValueError, "non-finite"),
    ("fit batch of 1", lambda t: fit(simclr(), U8[:1], batch_size=1), ValueError, "batch"),
    ("evaluate rank-3", lambda t: simclr().evaluate(U8[0], verbose=0), ValueError, "rank-4"),
    ("evaluate empty", lambda t: simclr().evaluate(U8[:0], verbose=0), ValueError, "empty"),
    ("evaluate float 0-255", lambda t: simclr().evaluate(U8 + 100.0, verbose=0), ValueError, "255"),
    ("evaluate NaN", lambda t: simclr().evaluate(nan_images(), verbose=0), ValueError, "NaN"),
    ("predict 4 channels", lambda t: simclr().predict(np.zeros((2, 16, 16, 4), "uint8"), verbose=0), ValueError, "channels"),
    ("predict int32", lambda t: simclr().predict(U8.astype("int32"), verbose=0), TypeError, "uint8"),
    # -- method constructors
    ("SimCLR encoder is a string", lambda t: kerassl.SimCLR("resnet18"), TypeError, "Keras model"),
    ("SimCLR feature-map encoder", lambda t: kerassl.SimCLR(feature_map_encoder()), ValueError, "wrap"),
    ("SimCLR temperature 0", lambda t: kerassl.SimCLR(enc(), temperature=0), ValueError, "temperature"),
    ("SimCLR temperature -1", lambda t: kerassl.SimCLR(enc(), temperature=-1.0), ValueError, "positive"),
    ("SimCLR num_classes 1", lambda t: kerassl.SimCLR(enc(), num_classes=1), ValueError, "num_classes"),
    ("DINO center_momentum 1.5", lambda t: kerassl.DINO(enc(), center_momentum=1.5), ValueError, "center_momentum"),
    ("DINO negative local crops", lambda t: kerassl.DINO(enc(), num_local_crops=-1), ValueError, "num_local_crops"),
    ("DINO encoder string", lambda t: kerassl.DINO("vit"), TypeError, "Keras"),
    ("DINO head_batch_norm yes", lambda t: kerassl.DINO(enc(), head_batch_norm="yes"), ValueError, "head_batch_norm"),
    ("MAE convnet encoder", lambda t: kerassl.MAE(enc()), ValueError, "ViT"),
    ("MAE mask_ratio 0", lambda t: kerassl.MAE(vit(), mask_ratio=0.0), ValueError, "mask_ratio"),
    ("MAE mask_ratio 1", lambda t: kerassl.MAE(vit(), mask_ratio=1.0), ValueError, "mask_ratio"),
    ("MAE mask_ratio 1.5", lambda t: kerassl.MAE(vit(), mask_ratio=1.5), ValueError, "mask_ratio"),
    ("RotNet hidden_dim 0", lambda t: kerassl.RotNet(enc(), hidden_dim=0), ValueError, "hidden_dim"),
    ("Autoencoder noise kind", lambda t: kerassl.Autoencoder(enc(), noise="salt"), ValueError, "noise"),
    ("Autoencoder loss kind", lambda t: kerassl.Autoencoder(enc(), loss="l3"), ValueError, "loss"),
    ("Jigsaw fixed-size encoder", lambda t: fit(compiled(kerassl.Jigsaw(enc((8, 8, 3)), num_permutations=4)), np.zeros((4, 24, 24, 3), "uint8")), ValueError, "input_shape=(None, None"),
    ("GAN latent_dim 0", lambda t: kerassl.GAN(latent_dim=0), ValueError, "latent_dim"),
    ("GAN label_smoothing 1", lambda t: kerassl.GAN(latent_dim=4, label_smoothing=1.0), ValueError, "label_smoothing"),
    ("GAN compile optimizer=", lambda t: kerassl.GAN(latent_dim=4, image_shape=(16, 16, 1), width=4).compile(optimizer="adam"), ValueError, "generator_optimizer"),
    ("GAN compile loss=", lambda t: kerassl.GAN(latent_dim=4, image_shape=(16, 16, 1), width=4).compile(loss="mse"), ValueError, "loss"),
    ("GAN compute_loss", lambda t: kerassl.GAN(latent_dim=4, image_shape=(16, 16, 1), width=4).compute_loss(), NotImplementedError, "fit()"),
    ("GAN generate n=0", lambda t: kerassl.GAN(latent_dim=4, image_shape=(16, 16, 1), width=4).generate(0), ValueError, "positive"),
    ("GAN fit wrong image size", lambda t: fit(gan_compiled(), np.zeros((4, 8, 8, 1), "uint8")), ValueError, "image_shape"),
    # -- CLIP
    ("CLIP fit without captions", lambda t: fit(clip_model(), U8), ValueError, "caption"),
    ("CLIP fit captions count", lambda t: fit(clip_model(), U8, ["a red square"] * 3), ValueError, "caption"),
    ("CLIP batch of 1", lambda t: fit(clip_model(), U8[:1], ["a red square"], batch_size=1), ValueError, "batch"),
    ("CLIP batch-of-1 error is about CLIP, not SimCLR", lambda t: assert_no_simclr(lambda: fit(clip_model(), U8[:1], ["a"], batch_size=1)), ValueError, "batch"),
    ("CLIP dict with extra key", lambda t: clip_model()({"images": U8, "words": U8}), ValueError, "'tokens'"),
    ("CLIP encode_image empty", lambda t: clip_model().encode_image(U8[:0]), ValueError, "empty"),
    ("CLIP encode_image rank 3", lambda t: clip_model().encode_image(U8[0]), ValueError, "rank-4"),
    # -- losses
    ("nt_xent mismatched shapes", lambda t: losses.nt_xent(f32(np.ones((4, 8))), f32(np.ones((4, 6)))), ValueError, "same shape"),
    ("nt_xent batch of 1", lambda t: losses.nt_xent(f32(np.ones((1, 8))), f32(np.ones((1, 8)))), ValueError, "batch"),
    ("nt_xent rank 3", lambda t: losses.nt_xent(f32(np.ones((2, 2, 8))), f32(np.ones((2, 2, 8)))), ValueError, "shape"),
    ("nt_xent temperature 0", lambda t: losses.nt_xent(f32(np.ones((4, 8))), f32(np.ones((4, 8))), 0.0), ValueError, "temperature"),
    ("nt_xent temperature nan", lambda t: losses.nt_xent(f32(np.ones((4, 8))), f32(np.ones((4, 8))), math.nan), ValueError, "temperature"),
    ("check_temperature string", lambda t: losses.check_temperature("hot"), TypeError, "temperature"),
    ("dino_loss teacher temperature 0", lambda t: kerassl.losses_distill.dino_loss(f32(np.ones((2, 4, 8))), f32(np.ones((2, 4, 8))), f32(np.zeros((1, 8))), 0.1, 0.0), ValueError, "temperature"),
    # -- augment
    ("RandomResizedCrop scale > 1", lambda t: augment.RandomResizedCrop(16, scale=(0.5, 2.0)), ValueError, "scale"),
    ("RandomResizedCrop scale reversed", lambda t: augment.RandomResizedCrop(16, scale=(0.9, 0.2)), ValueError, "scale"),
    ("RandomResizedCrop size 0", lambda t: augment.RandomResizedCrop(0), ValueError, "size"),
    ("RandomResizedCrop ratio negative", lambda t: augment.RandomResizedCrop(16, ratio=(-1.0, 2.0)), ValueError, "ratio"),
    ("ColorJitter brightness -1", lambda t: augment.ColorJitter(brightness=-1), ValueError, "brightness"),
    ("ColorJitter hue 0.9", lambda t: augment.ColorJitter(hue=0.9), ValueError, "hue"),
    ("RandomApply probability 2", lambda t: augment.RandomApply(keras.layers.Identity(), probability=2.0), ValueError, "probability"),
    ("RandomGrayscale probability -0.1", lambda t: augment.RandomGrayscale(probability=-0.1), ValueError, "probability"),
    ("simclr_augmenter channels 4", lambda t: augment.simclr_augmenter(16, 4), ValueError, "channels"),
    # -- backbones
    ("resnet18 4 channels", lambda t: kerassl.backbones.resnet18(input_shape=(32, 32, 4)), ValueError, "channels"),
    ("vit patch does not divide", lambda t: kerassl.vit.vit(30, patch_size=4), ValueError, "patch"),
    ("vit heads do not divide", lambda t: kerassl.vit.vit(16, patch_size=4, hidden_dim=10, num_heads=3), ValueError, "heads"),
    ("wrap non-model", lambda t: kerassl.backbones.wrap("resnet"), ValueError, "keras.Model"),
    ("wrap pooling kind", lambda t: kerassl.backbones.wrap(feature_map_encoder(), pooling="median"), ValueError, "pooling"),
    ("backbones.get unknown", lambda t: kerassl.backbones.get("resnet1000"), ValueError, "known backbones"),
    # -- finetune
    ("finetune encoder string", lambda t: kerassl.finetune("enc", (U8, LABELS), 2), TypeError, "keras.Model"),
    ("finetune mode", lambda t: kerassl.finetune(enc(), (U8, LABELS), 2, mode="half"), ValueError, "mode"),
    ("finetune head", lambda t: kerassl.finetune(enc(), (U8, LABELS), 2, head="tree"), ValueError, "head"),
    ("finetune num_classes 1", lambda t: kerassl.finetune(enc(), (U8, LABELS), 1), ValueError, "num_classes"),
    ("finetune num_classes float", lambda t: kerassl.finetune(enc(), (U8, LABELS), 2.0), ValueError, "integer"),
    ("finetune epochs 0", lambda t: kerassl.finetune(enc(), (U8, LABELS), 2, epochs=0), ValueError, "epochs"),
    ("finetune lr scale 0", lambda t: kerassl.finetune(enc(), (U8, LABELS), 2, mode="full", encoder_learning_rate_scale=0), ValueError, "encoder_learning_rate_scale"),
    ("finetune images only", lambda t: kerassl.finetune(enc(), U8, 2), TypeError, "(images, labels)"),
    ("finetune float labels", lambda t: kerassl.finetune(enc(), (U8, LABELS + 0.5), 2), ValueError, "integer"),
    ("finetune labels out of range", lambda t: kerassl.finetune(enc(), (U8, LABELS + 3), 2), ValueError, "num_classes"),
    ("finetune label count", lambda t: kerassl.finetune(enc(), (U8, LABELS[:5]), 2), ValueError, "one label per image"),
    ("finetune NaN pixel", lambda t: kerassl.finetune(enc(), (nan_images(), np.arange(300) % 2), 2), ValueError, "images[280]"),
    ("finetune empty", lambda t: kerassl.finetune(enc(), (U8[:0], LABELS[:0]), 2), ValueError, "empty"),
    ("finetune wrong image size", lambda t: kerassl.finetune(enc(), (np.zeros((8, 8, 8, 3), "uint8"), LABELS), 2), ValueError, "size"),
    ("finetune feature-map encoder", lambda t: kerassl.finetune(feature_map_encoder(), (U8, LABELS), 2), ValueError, "wrap"),
    ("finetune unbatched dataset", lambda t: kerassl.finetune(enc(), unbatched(), 2), ValueError, "batch"),
    ("finetune dataset without labels", lambda t: kerassl.finetune(enc(), tf_dataset(U8), 2), ValueError, "labels"),
    ("finetune dict dataset without images", lambda t: kerassl.finetune(enc(), tf_dataset({"x": U8, "labels": LABELS}), 2), ValueError, "'images'"),
    ("finetune dict dataset without labels", lambda t: kerassl.finetune(enc(), tf_dataset({"images": U8}), 2), ValueError, "'labels'"),
    # -- evaluation
    ("extract_features rank 3", lambda t: extract_features(enc(), U8[0], verbose=0), ValueError, "rank-4"),
    ("extract_features float 0-255", lambda t: extract_features(enc(), U8 + 10.0, verbose=0), ValueError, "255"),
    ("extract_features non-model", lambda t: extract_features("enc", U8, verbose=0), TypeError, "keras"),
    ("knn k 0", lambda t: knn_accuracy(enc(), U8, LABELS, U8, LABELS, k=0, verbose=False), ValueError, "k"),
    ("knn temperature 0", lambda t: knn_accuracy(enc(), U8, LABELS, U8, LABELS, temperature=0.0, verbose=False), ValueError, "temperature"),
    ("knn float labels", lambda t: knn_accuracy(enc(), U8, LABELS + 0.5, U8, LABELS, verbose=False), ValueError, "integer"),
    ("knn label count", lambda t: knn_accuracy(enc(), U8, LABELS[:3], U8, LABELS, verbose=False), ValueError, "one label per image"),
    ("knn NaN images", lambda t: knn_accuracy(enc(), nan_images(), np.arange(300) % 2, U8, LABELS, verbose=False), ValueError, "NaN"),
    ("linear_probe epochs 0", lambda t: linear_probe(enc(), U8, LABELS, U8, LABELS, epochs=0), ValueError, "epochs"),
    ("linear_probe one-hot labels", lambda t: linear_probe(enc(), U8, np.eye(2)[LABELS], U8, LABELS, epochs=1), ValueError, "argmax"),
    ("recall_at_k caption_ids count", lambda t: recall_at_k(f32(np.ones((4, 8))), f32(np.ones((5, 8))), np.arange(3)), ValueError, "caption_ids"),
    ("recall_at_k dims differ", lambda t: recall_at_k(f32(np.ones((4, 8))), f32(np.ones((5, 6))), np.arange(4)), ValueError, "same D"),
    ("recall_at_k ids out of range", lambda t: recall_at_k(f32(np.ones((4, 8))), f32(np.ones((2, 8))), np.arange(4)), ValueError, "index"),
    # -- image folders and files
    ("image_folder missing path", lambda t: datasets.image_folder(t / "nowhere"), (FileNotFoundError, ValueError), "nowhere"),
    ("image_folder a file", lambda t: datasets.image_folder(write(t / "a.txt", b"x")), ValueError, "folder"),
    ("image_folder no class folders", lambda t: datasets.image_folder(mkdir(t / "flat")), ValueError, "labels=None"),
    ("image_folder channels 2", lambda t: datasets.image_folder(t, channels=2), ValueError, "channels"),
    ("image_folder on_error", lambda t: datasets.image_folder(t, on_error="ignore"), ValueError, "on_error"),
    ("image_folder labels kind", lambda t: datasets.image_folder(t, labels="categorical"), ValueError, "labels"),
    ("image_folder image_size 0", lambda t: datasets.image_folder(png_tree(t), image_size=0), ValueError, "image_size"),
    ("image_folder unknown class", lambda t: datasets.image_folder(png_tree(t), class_names=["zebra"]), ValueError, "zebra"),
    ("image_folder empty class", lambda t: datasets.image_folder(png_tree(t, empty="b")), datasets.ImageFolderError, "hold no image"),
    ("image_folder mixed sizes", lambda t: datasets.image_folder(png_tree(t, sizes=(8, 12))), ValueError, "image_size="),
    ("read_images zero bytes", lambda t: datasets.read_images([write(t / "z.png", b"")]), datasets.ImageFolderError, "empty file"),
    ("read_images text as png", lambda t: datasets.read_images([write(t / "t.png", b"hello")]), datasets.ImageFolderError, "decode"),
    ("read_images over max_pixels", lambda t: datasets.read_images([png_tree(t) / "a" / "0.png"], max_pixels=10), datasets.ImageFolderError, "max_pixels"),
    ("to_dataset bad batch", lambda t: datasets.to_dataset(U8, batch_size=0), ValueError, "batch_size"),
    # -- zoo
    ("load_encoder missing folder", lambda t: kerassl.zoo.load_encoder(str(t / "missing_dir")), FileNotFoundError, "does not exist"),
    ("load_encoder missing .keras", lambda t: kerassl.zoo.load_encoder(str(t / "model.keras")), FileNotFoundError, "does not exist"),
    ("load_encoder unknown preset", lambda t: kerassl.zoo.load_encoder("no_such_preset_v9"), ValueError, "list_presets"),
    ("load_encoder bad hf source", lambda t: kerassl.zoo.load_encoder("hf://"), ValueError, "hf://"),
    ("get_preset unknown", lambda t: kerassl.zoo.get_preset("nope"), ValueError, "list_presets"),
]


def compiled(model):
    model.compile(optimizer="adam")
    return model


def gan_compiled():
    model = kerassl.GAN(latent_dim=4, image_shape=(16, 16, 1), width=4)
    model.compile()
    return model


def unbatched():
    import tensorflow as tf

    return tf.data.Dataset.from_tensor_slices((U8, LABELS))


def mkdir(path):
    path.mkdir(parents=True, exist_ok=True)
    (path / "x.png").write_bytes(b"")
    return path


def png_tree(root, empty=None, sizes=(8, 8)):
    from PIL import Image

    root = root / "tree"
    for name, size in zip("ab", sizes):
        (root / name).mkdir(parents=True, exist_ok=True)
        Image.new("RGB", (size, size)).save(root / name / "0.png")
    if empty:
        (root / empty / "0.png").unlink()
    return root


def assert_no_simclr(call):
    try:
        call()
    except ValueError as error:
        assert "SimCLR" not in str(error), str(error)
        raise


def run_case(case, tmp_path):
    name, call, error, word = case
    with pytest.raises(error) as info:
        call(tmp_path)
    message = str(info.value)
    assert word.lower() in message.lower(), f"{name}: {word!r} not in {message!r}"
    assert "Traceback" not in message and len(message) < 2000


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_bad_input_gets_a_clear_error(case, tmp_path):
    run_case(case, tmp_path)


def test_the_table_is_large_and_ids_unique():
    assert len(CASES) >= 100
    assert len({c[0] for c in CASES}) == len(CASES)


if __name__ == "__main__":  # prints the README table and how many rows pass
    import pathlib
    import tempfile

    clear = 0
    rows = []
    for case in CASES:
        with tempfile.TemporaryDirectory() as folder:
            try:
                run_case(case, pathlib.Path(folder))
                ok = "yes"
                clear += 1
            except BaseException as failure:  # noqa: BLE001  (a report of every row)
                ok = f"NO: {type(failure).__name__}: {str(failure)[:100]}"
        errors = case[2] if isinstance(case[2], tuple) else (case[2],)
        rows.append(f"| {case[0]} | {' or '.join(e.__name__ for e in errors)} | {case[3]} | {ok} |")
    print("| case | error | message contains | clear |\n| --- | --- | --- | --- |")
    print("\n".join(rows))
    print(f"\n{clear} of {len(CASES)} cases give the expected clear error")
