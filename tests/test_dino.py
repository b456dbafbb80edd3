"""DINO: loss against NumPy, head, multi-crop, EMA teacher, centre, contract, learning."""

import math

import keras
import numpy as np
import pytest

import kerassl
from kerassl import losses_distill
from kerassl.methods.dino import DINO, DINOHead, batch_statistics
from tests.conftest import shared_data_file
from tests.method_harness import run_method_test, tiny_data
from tests.random_inits import mnist_convnet, mnist_knn, mnist_random_inits, mnist_subset, random_init_knn


def tiny_vit(input_shape=(16, 16, 3)):
    return kerassl.vit.vit(
        input_shape[0], patch_size=4, channels=input_shape[-1], hidden_dim=16, depth=1, num_heads=2
    )


def make_dino(encoder, **kwargs):
    kwargs.setdefault("head_hidden_dim", 16)
    kwargs.setdefault("head_bottleneck_dim", 8)
    kwargs.setdefault("head_output_dim", 32)
    kwargs.setdefault("num_local_crops", 2)
    return DINO(encoder, seed=0, **kwargs)


def numpy_dino_loss(student, teacher, center, ts, tt):
    def softmax(z):
        z = z - z.max(-1, keepdims=True)
        e = np.exp(z)
        return e / e.sum(-1, keepdims=True)

    targets = softmax((teacher - center) / tt)
    log_p = np.log(softmax(student / ts))
    total, count = 0.0, 0
    for g in range(teacher.shape[0]):
        for v in range(student.shape[0]):
            if v == g:
                continue
            total += np.mean(np.sum(-targets[g] * log_p[v], axis=-1))
            count += 1
    return total / count


@pytest.mark.parametrize("crops, globals_, ts, tt", [(2, 2, 0.1, 0.04), (5, 2, 0.2, 0.07), (3, 1, 0.1, 0.5)])
def test_dino_loss_matches_numpy(crops, globals_, ts, tt):
    rng = np.random.default_rng(crops)
    student = rng.normal(size=(crops, 6, 10)).astype("float32")
    teacher = rng.normal(size=(globals_, 6, 10)).astype("float32")
    center = rng.normal(size=(10,)).astype("float32") * 0.1
    got = losses_distill.dino_loss(student, teacher, center, ts, tt)
    expected = numpy_dino_loss(student, teacher, center, ts, tt)
    np.testing.assert_allclose(float(keras.ops.convert_to_numpy(got)), expected, rtol=1e-4)


def test_dino_loss_checks_arguments():
    with pytest.raises(ValueError, match="temperature must be positive"):
        losses_distill.dino_loss(np.zeros((2, 2, 4)), np.zeros((2, 2, 4)), np.zeros(4), 0.0)
    with pytest.raises(ValueError, match="global crop"):
        losses_distill.dino_loss(np.zeros((1, 2, 4)), np.zeros((2, 2, 4)), np.zeros(4))


def test_schedules():
    value = lambda t: float(keras.ops.convert_to_numpy(t))  # noqa: E731
    assert value(losses_distill.cosine_schedule(0, 100, 0.996, 1.0)) == pytest.approx(0.996)
    assert value(losses_distill.cosine_schedule(50, 100, 0.996, 1.0)) == pytest.approx(0.998)
    assert value(losses_distill.cosine_schedule(100, 100, 0.996, 1.0)) == pytest.approx(1.0)
    assert value(losses_distill.cosine_schedule(500, 100, 0.996, 1.0)) == pytest.approx(1.0)
    assert value(losses_distill.cosine_schedule(5, 0, 0.996, 1.0)) == pytest.approx(0.996)
    assert value(losses_distill.linear_warmup(5, 10, 0.04, 0.07)) == pytest.approx(0.055)
    assert value(losses_distill.linear_warmup(20, 10, 0.04, 0.07)) == pytest.approx(0.07)


def test_head_is_weight_normalized_on_a_unit_bottleneck():
    head = DINOHead(hidden_dim=8, bottleneck_dim=4, output_dim=6)
    features = np.random.default_rng(0).normal(size=(5, 3)).astype("float32")
    logits = keras.ops.convert_to_numpy(head(features))
    bottleneck = keras.ops.convert_to_numpy(head.mlp(features))
    bottleneck /= np.linalg.norm(bottleneck, axis=1, keepdims=True)
    weight = keras.ops.convert_to_numpy(head.prototypes)
    expected = bottleneck @ (weight / np.linalg.norm(weight, axis=0, keepdims=True))
    np.testing.assert_allclose(logits, expected, rtol=1e-4, atol=1e-5)
    assert np.abs(logits).max() <= 1.0 + 1e-5


def test_crop_sizes():
    model = make_dino(tiny_vit(), num_local_crops=3)
    images, _ = tiny_data((16, 16, 3), count=4)
    model.build(images.shape)
    local = model.local_augmenter(images / 255.0, training=True)
    assert tuple(local.shape) == (4, 8, 8, 3)  # 96/224 of 16 px, a multiple of the patch
    assert tuple(model.global_augmenter(images / 255.0, training=True).shape) == (4, 16, 16, 3)


def test_teacher_is_the_encoder_and_gets_no_gradient():
    model = make_dino(tiny_vit())
    model.build((None, 16, 16, 3))
    trainable = {id(v) for v in model.trainable_variables}
    teacher = model.encoder.weights + model.teacher_head.weights
    assert teacher and not any(id(v) in trainable for v in teacher)
    assert model.encoder is model.teacher_encoder and model.encoder is not model.student_encoder
    student = model.student_encoder.trainable_weights + model.head.trainable_weights
    assert all(id(v) in trainable for v in student)
    if keras.config.backend() == "tensorflow":
        import tensorflow as tf

        images, _ = tiny_data((16, 16, 3), count=4)
        with tf.GradientTape(persistent=True) as tape:
            out = model(images, training=True)
            loss = losses_distill.dino_loss(
                out["student_logits"], out["teacher_logits"], model.center
            )
        grads = tape.gradient(loss, [v.value for v in teacher])
        assert all(g is None for g in grads)
        student_grads = tape.gradient(loss, [v.value for v in model.head.trainable_weights])
        assert any(g is not None for g in student_grads)


def test_ema_step_multi_crop_shapes_and_centre_update():
    model = make_dino(
        tiny_vit(), num_local_crops=3, momentum_start=0.9, momentum_end=1.0, momentum_schedule_steps=10
    )
    model.compile(optimizer=keras.optimizers.SGD(0.1))
    images, _ = tiny_data((16, 16, 3), count=4)
    model.build(images.shape)
    rng = np.random.default_rng(0)
    pairs = model.ema_pairs()
    for teacher, _ in pairs:  # make teacher and student differ
        teacher.assign(teacher + rng.normal(size=teacher.shape).astype("float32") * 0.1)
    teacher_before = [keras.ops.convert_to_numpy(t) for t, _ in pairs]
    student_before = [keras.ops.convert_to_numpy(s) for _, s in pairs]
    # A step after the first (the first sets the teacher to the student).
    model.step_counter.assign(1.0)
    m = 1.0 - 0.1 * (math.cos(math.pi * 1 / 10) + 1) / 2
    model.fit(images, batch_size=4, epochs=1, verbose=0)
    for (teacher, student), t0, s0 in zip(pairs, teacher_before, student_before):
        np.testing.assert_allclose(
            keras.ops.convert_to_numpy(teacher), m * t0 + (1 - m) * s0, rtol=1e-5, atol=1e-6
        )
    assert not np.allclose(keras.ops.convert_to_numpy(pairs[-1][1]), student_before[-1])

    # The centre: c <- m c + (1 - m) mean(teacher outputs), and the next momentum follows the schedule.
    out = model(images, training=True)
    assert tuple(out["student_logits"].shape) == (5, 4, 32)  # 2 global + 3 local crops
    assert tuple(out["teacher_logits"].shape) == (2, 4, 32)  # the teacher sees the globals only
    center_before = keras.ops.convert_to_numpy(model.center)
    model.compute_loss(images, y_pred=out, training=True)
    batch_mean = keras.ops.convert_to_numpy(out["teacher_logits"]).mean(axis=(0, 1))
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(model.center)[0],
        0.9 * center_before[0] + 0.1 * batch_mean,
        rtol=1e-5,
        atol=1e-6,
    )
    momentum = 1.0 - 0.1 * (math.cos(math.pi * 2 / 10) + 1) / 2
    value = float(keras.ops.convert_to_numpy(model.teacher_momentum_at(2.0)))
    assert value == pytest.approx(momentum, rel=1e-6)


def test_method_contract(tmp_path):
    run_method_test(
        make_dino,
        tiny_vit,
        tmp_path,
        expected_metrics=("teacher_entropy", "teacher_batch_entropy", "teacher_momentum"),
        data_variants=False,
    )


def test_built_before_compile_trains_in_several_fits():
    # Regression: the teacher once started as the student by sharing its arrays;
    # on JAX `fit` donates every variable's buffer, so the first fit of a model
    # built before `compile` failed ("donate the same buffer twice").
    images, _ = tiny_data((16, 16, 3), count=16)
    model = make_dino(tiny_vit(), momentum_schedule_steps=4)
    model.build(images.shape)
    for teacher, student in model.ema_pairs():
        np.testing.assert_array_equal(keras.ops.convert_to_numpy(teacher), keras.ops.convert_to_numpy(student))
    before = model.encoder.predict(images, verbose=0)
    model.compile(optimizer=keras.optimizers.AdamW(1e-3))
    model.fit(images, batch_size=8, epochs=1, verbose=0)
    model.encoder.predict(images, verbose=0)
    model.fit(images, batch_size=8, epochs=2, initial_epoch=1, verbose=0)
    after = model.encoder.predict(images, verbose=0)
    assert np.all(np.isfinite(after)) and not np.allclose(before, after)


@pytest.mark.parametrize("encoder", ["convnet", "vit"])
def test_teacher_starts_as_the_student_when_fit_builds_the_model(encoder, make_encoder):
    # Regression: `fit` builds an unbuilt model in a stateless symbolic pass that
    # drops assignments, so the copy in `build` was lost and the teacher started as
    # an independent random network. With a zero learning rate the student stays
    # put and every EMA step keeps teacher == student, so after one step they match.
    images, _ = tiny_data((16, 16, 3), count=8)
    model = make_dino(make_encoder((16, 16, 3)) if encoder == "convnet" else tiny_vit(), num_local_crops=0)
    model.compile(optimizer=keras.optimizers.SGD(0.0))
    model.fit(images, batch_size=8, epochs=1, verbose=0)
    student_weights = {id(v) for v in model.student_encoder.trainable_weights + model.head.trainable_weights}
    pairs = [(t, s) for t, s in model.ema_pairs() if id(s) in student_weights]
    assert pairs
    for teacher, student in pairs:
        np.testing.assert_allclose(
            keras.ops.convert_to_numpy(teacher), keras.ops.convert_to_numpy(student), atol=1e-6, err_msg=teacher.path
        )


def test_works_with_a_convnet_encoder_and_sets_the_schedule_length(make_encoder):
    model = make_dino(make_encoder((16, 16, 3)))
    model.compile(optimizer="adamw")
    images, _ = tiny_data((16, 16, 3))
    history = model.fit(images, batch_size=8, epochs=2, verbose=0)
    assert all(np.isfinite(history.history["loss"]))
    assert model.predict(images, verbose=0).shape == (16, 16)
    assert float(keras.ops.convert_to_numpy(model.schedule_steps)) == 4.0
    assert float(keras.ops.convert_to_numpy(model.step_counter)) == 4.0


def test_compile_adds_gradient_clipping_unless_the_optimizer_clips(make_encoder):
    model = make_dino(make_encoder())
    model.compile(optimizer="adamw")
    assert model.optimizer.clipnorm == 3.0
    model = make_dino(make_encoder())
    model.compile(optimizer=keras.optimizers.AdamW(global_clipnorm=1.0))
    assert model.optimizer.clipnorm is None and model.optimizer.global_clipnorm == 1.0


def test_bad_arguments_are_clear(make_encoder):
    with pytest.raises(ValueError, match="center_momentum"):
        DINO(make_encoder(), center_momentum=1.5)
    with pytest.raises(ValueError, match="num_local_crops"):
        DINO(make_encoder(), num_local_crops=-1)
    with pytest.raises(TypeError, match="Keras model"):
        DINO("resnet")
    with pytest.raises(ValueError, match="head_batch_norm"):
        DINO(make_encoder(), head_batch_norm="yes")


def test_head_batch_norm_auto_is_on_for_convnets_and_off_for_vits(make_encoder):
    def head_has_batch_norm(model):
        return any(isinstance(layer, keras.layers.BatchNormalization) for layer in model.head._flatten_layers())

    assert head_has_batch_norm(make_dino(make_encoder()))
    assert not head_has_batch_norm(make_dino(tiny_vit()))
    assert not head_has_batch_norm(make_dino(make_encoder(), head_batch_norm=False))
    assert head_has_batch_norm(make_dino(tiny_vit(), head_batch_norm=True))
    model = make_dino(make_encoder(), head_batch_norm=False)
    restored = DINO.from_config(model.get_config())
    assert restored.head_batch_norm is False and not head_has_batch_norm(restored)


def test_frozen_teacher_batchnorm_uses_batch_statistics(make_encoder):
    # The official teacher is never put in eval mode; a frozen Keras BatchNorm would
    # ignore training=True and use the (lagging) moving statistics instead.
    layer = keras.layers.BatchNormalization()
    model = keras.Sequential([keras.Input((3,)), layer])
    model.trainable = False
    x = np.random.default_rng(0).normal(3.0, 2.0, size=(64, 3)).astype("float32")
    frozen = keras.ops.convert_to_numpy(model(x, training=True))
    np.testing.assert_allclose(frozen, x / np.sqrt(1.0 + 1e-3), rtol=1e-5)  # moving stats 0 / 1
    with batch_statistics(model):
        normalized = keras.ops.convert_to_numpy(model(x, training=True))
    np.testing.assert_allclose(normalized.mean(0), 0.0, atol=1e-4)
    np.testing.assert_allclose(normalized.std(0), 1.0, atol=1e-2)
    assert not layer.trainable and not model.trainable_weights
    # In the method: the flags are restored after each training call.
    dino = make_dino(make_encoder((16, 16, 3)), num_local_crops=0)
    images, _ = tiny_data((16, 16, 3), count=8)
    dino.build(images.shape)
    count = len(dino.trainable_variables)
    dino(images, training=True)
    assert not dino.encoder.trainable_weights and len(dino.trainable_variables) == count


# Measured on TF (2 shared cores, load 5-10, 2026-11-28), sklearn digits at 16 px, batch
# 128, 10 epochs = 120 steps (fit about 40-60 s), small_convnet(width 32, feature_dim 128),
# head 256-64-256, 2 local crops, AdamW(1e-3, wd 0.04), momentum 0.99 -> 1:
#   teacher on moving statistics (an early bug): entropy 5.544, batch entropy 5.544
#     (log K = 5.545): every image got the same, uniform target.
#   teacher on batch statistics, before the teacher-initialization fix (the teacher began
#     as an independent random network): entropy 4.86-4.90, batch entropy 5.51-5.52,
#     kNN (k=20) random init 0.939, teacher 0.82-0.85.
#   after that fix, with BatchNorm in the head ("auto" for convnets): entropy 4.14, batch
#     entropy 5.40; teacher kNN 0.872 against 0.939: still no gain within this budget.
def dino_on_digits(encoder_fn, epochs=10):
    (x, y), (x_test, y_test) = kerassl.datasets.load_digits(image_size=16)
    keras.utils.set_random_seed(0)
    baseline = kerassl.evaluate.knn_accuracy(encoder_fn(), x, y, x_test, y_test, k=20, verbose=False)
    keras.utils.set_random_seed(0)
    model = DINO(
        encoder_fn(), head_hidden_dim=256, head_bottleneck_dim=64, head_output_dim=256,
        num_local_crops=2, momentum_start=0.99, seed=0,
    )
    model.compile(optimizer=keras.optimizers.AdamW(1e-3, weight_decay=0.04))
    history = model.fit(x, batch_size=128, epochs=epochs, verbose=0)
    entropy = history.history["teacher_entropy"][-1]
    batch_entropy = history.history["teacher_batch_entropy"][-1]
    accuracy = kerassl.evaluate.knn_accuracy(model.encoder, x, y, x_test, y_test, k=20, verbose=False)
    print(f"baseline {baseline:.3f} dino {accuracy:.3f} entropy {entropy:.3f} batch {batch_entropy:.3f}")
    return baseline, accuracy, entropy, batch_entropy


@pytest.mark.slow
@pytest.mark.extended  # the MNIST test asserts the same two entropy bounds, on both backends
def test_convnet_teacher_targets_differ_between_images_on_digits():
    _, _, entropy, batch_entropy = dino_on_digits(
        lambda: kerassl.backbones.small_convnet((16, 16, 1), width=32, feature_dim=128)
    )
    # Measured 4.86-4.90 and 5.51-5.52 (see above); 5.544 / 5.544 before the fix.
    assert 0.05 * math.log(256) < entropy < 0.93 * math.log(256)
    assert batch_entropy > entropy + 0.3


@pytest.mark.slow
@pytest.mark.extended  # a known failure, 45 s of CPU: out of CI's time, run by `make test-extended`
@pytest.mark.xfail(
    strict=True,
    reason="measured on TF (2 shared cores): a tiny ViT at 16 px, 10 epochs (120 steps), "
    "ends in uniform collapse (teacher entropy 5.545 of log 256 = 5.545, batch entropy "
    "5.545; kNN 0.764 vs 0.797 random init; also after the teacher-initialization fix). At init the ViT maps every image to nearly the "
    "same direction (bottleneck cosine 0.994), so the teacher's targets are uniform and "
    "the same for all images from step 0; this budget does not break that symmetry. "
    "strict: passing means fixed.",
)
def test_vit_no_collapse_and_knn_above_random_init_on_digits():
    baseline, accuracy, entropy, batch_entropy = dino_on_digits(
        lambda: kerassl.vit.vit(16, 4, 1, hidden_dim=64, depth=2, num_heads=4)
    )
    assert 0.05 * math.log(256) < entropy < 0.95 * math.log(256)
    assert batch_entropy > entropy + 0.1
    assert accuracy > baseline + 0.02


def fit_and_score(model, x, batch_size, epochs, knn, result):
    """Fits a compiled DINO; adds teacher/student kNN and the last epoch's metrics to `result`."""
    history = model.fit(x, batch_size=batch_size, epochs=epochs, verbose=0).history
    result.update(
        teacher=knn(model.encoder), student=knn(model.student_encoder),
        entropy=history["teacher_entropy"][-1], batch_entropy=history["teacher_batch_entropy"][-1],
        loss=history["loss"][-1],
    )
    print({key: round(value, 4) for key, value in result.items()})
    return result


def dino_on_mnist(seed=0, epochs=10, batch_size=64):
    """DINO on 2,000 MNIST images, the recipe of `benchmarks/dino_small_budget.py --data mnist`.

    small_convnet(width 16, 64 features); head 512-64-1024 with BatchNorm;
    2 global crops, no local crops, no flips (a mirrored digit is another
    shape); teacher momentum 0.96 -> 1; AdamW(1e-3, wd 0.04); 320 steps:
    10 epochs at batch 64 (the benchmark: 20 epochs at batch 128). kNN as
    the RotNet and Jigsaw tests: k=20, the first 1,000 training images as
    bank, 1,000 test queries.
    """
    (x, _), _ = mnist_subset()
    knn = mnist_knn
    inits = mnist_random_inits(seed)
    result = dict(random_init=inits["random_init"], random_init_mean=inits["random_init_mean"])
    keras.utils.set_random_seed(seed)
    no_flips = kerassl.augment.simclr_augmenter(
        28, 1, scale=(0.4, 1.0), flip=False, seed=seed, name="global_augmenter"
    )
    model = DINO(
        mnist_convnet(), head_hidden_dim=512, head_bottleneck_dim=64, head_output_dim=1024,
        num_local_crops=0, momentum_start=0.96, global_augmenter=no_flips, seed=seed,
    )
    model.compile(optimizer=keras.optimizers.AdamW(1e-3, weight_decay=0.04))
    return fit_and_score(model, x, batch_size, epochs, knn, result)


@pytest.mark.slow
def test_convnet_teacher_beats_random_init_by_knn_on_mnist():
    # Measured with dino_on_mnist at 20 epochs of 128 (2 cores, 2026-11-28; fit about 50 s
    # on TF), seed 0:
    #   TF: random inits 0.561 (the one trained) and 0.592 mean of 5 (0.513-0.636),
    #     teacher 0.741, student 0.754, entropy 0.89 and batch entropy 3.98 of log K 6.93.
    #   JAX: random inits 0.728 (the luckiest of 10 draws, 0.547-0.728) and 0.627
    #     mean of 5, teacher 0.720, student 0.742; 30 epochs: teacher 0.750.
    # A scratch script with other init draws, teacher against its random init: seeds
    # 0 / 1 / 4 0.686 / 0.753 / 0.748 against 0.561 / 0.636 / 0.513; with flips (the
    # default augmenter) seed 0 0.652; with 2 local crops seed 1 0.697; with 2 local
    # crops, flips and momentum from 0.99 (the earlier recipe) 0.472.
    # Now the same 320 steps at batch 64 (10 epochs), for CI's time: the fit is about 40%
    # shorter. Measured 2026-12-08 (idle machine, one TF and one JAX process side by side,
    # dino_on_mnist(seed=s)), seeds 0 / 1, teacher kNN (gain over the mean of its 5 inits):
    #   TF: 0.691 (+0.099) / 0.702 (+0.105); entropy 1.19 / 1.43, batch entropy 3.78 / 4.12.
    #   JAX: 0.675 (+0.048, from the lucky 0.728 init) / 0.697 (+0.088); entropy 1.22 / 1.14,
    #   batch entropy 4.00 / 3.85.
    # (At batch 128, 10 epochs (160 steps) were too few: JAX seed 0 0.630, +0.003.)
    # The margin is about half the smallest gain on each backend.
    margin = dict(tensorflow=0.05, jax=0.02)[keras.config.backend()]
    result = dino_on_mnist(seed=0)
    log_k = math.log(1024)
    assert 0.05 * log_k < result["entropy"] < 0.95 * log_k, result
    assert result["batch_entropy"] > result["entropy"] + 0.3, result
    assert result["teacher"] > result["random_init_mean"] + margin, result


def calibrate_batchnorm(encoder, images, batch_size=250, passes=2):
    """A random init's BatchNorm moving statistics, estimated on clean images.

    Keras starts them at mean 0 / variance 1; a trained encoder's are the
    data's. Comparing against the calibrated init keeps a "DINO beats random
    init" gain from being only new statistics.
    """
    images = images.astype("float32") / 255.0
    for _ in range(passes):
        for start in range(0, len(images), batch_size):
            encoder(images[start : start + batch_size], training=True)


def dino_on_cifar10(seed=0, epochs=6):
    """DINO on 10,000 CIFAR-10 images, the recipe of `benchmarks/dino_small_budget.py --data cifar10`.

    small_convnet(width 16, 64 features); head 2048-256-2048 with BatchNorm
    (the "auto" default for convnets); 2 global crops, no local crops;
    teacher momentum 0.96 -> 1; SGD(0.9) at 0.06, 1-epoch warm-up then
    cosine; batch 256; 6 epochs = 240 steps. kNN k=20 with the first 5,000
    training images as bank and 2,000 random test images as queries (the
    benchmark draws its own subset and uses all 10,000 test images).
    """
    path = shared_data_file("cifar10-jpeg.tar.gz")
    (x, y), (x_test, y_test) = kerassl.datasets.cifar10(path=path, train_limit=10000, test_limit=2000)

    def knn(encoder):
        return kerassl.evaluate.knn_accuracy(encoder, x[:5000], y[:5000], x_test, y_test, k=20, verbose=False)

    def encoder_fn():
        return kerassl.backbones.small_convnet((32, 32, 3), width=16, feature_dim=None)

    inits = random_init_knn(encoder_fn, knn, seed)
    result = dict(random_init=inits["random_init"], random_init_mean=inits["random_init_mean"])
    keras.utils.set_random_seed(seed)
    random_init = encoder_fn()
    calibrate_batchnorm(random_init, x[:5000])
    result.update(random_init_calibrated=knn(random_init))
    keras.utils.set_random_seed(seed)
    steps_per_epoch = math.ceil(len(x) / 256)
    learning_rate = keras.optimizers.schedules.CosineDecay(
        0.0, (epochs - 1) * steps_per_epoch, warmup_target=0.06, warmup_steps=steps_per_epoch
    )
    model = DINO(
        encoder_fn(), head_hidden_dim=2048, head_bottleneck_dim=256, head_output_dim=2048,
        num_local_crops=0, momentum_start=0.96, seed=seed,
    )
    model.compile(optimizer=keras.optimizers.SGD(learning_rate, momentum=0.9))
    return fit_and_score(model, x, 256, epochs, knn, result)


@pytest.mark.slow
@pytest.mark.extended  # 340 s on TF in CI's run, its longest test: run by `make test-extended`
def test_convnet_teacher_beats_random_init_by_knn_on_cifar10():
    # Measured with dino_on_cifar10 on TF (2 cores, 2026-11-28; fit about 190 s), seed 0:
    # random inits 0.358 (the one trained; 0.327 with BatchNorm statistics of the data)
    # and 0.338 mean of 5, teacher 0.406, student 0.408, entropy 2.73 and batch entropy
    # 5.23 of log K = 7.62. The earlier recipe (2 local crops, momentum from 0.99,
    # 6 epochs) gave teacher 0.334 and entropy 6.68; this one at 6 epochs 0.376.
    # Now 6 epochs (240 steps; CI time: 10 epochs made this the slowest test, 430 s), measured
    # on TF 2026-12-06 (load 5-7, 582 s wall for the whole function): random inits 0.358,
    # mean of 5 0.338, teacher 0.383 (+0.044), student 0.387, entropy 4.27 and batch entropy
    # 6.09 of log K = 7.62. The margin below is about half that gain.
    result = dino_on_cifar10(seed=0)
    log_k = math.log(2048)
    # No collapse: neither one-hot (entropy near 0) nor uniform (near log K), and the
    # targets differ between images (the batch-mean target is flatter than each one).
    assert 0.2 * log_k < result["entropy"] < 0.95 * log_k, result
    assert result["batch_entropy"] > result["entropy"] + 0.3, result
    assert result["teacher"] > result["random_init_mean"] + 0.02, result
