"""The kerassl side of one benchmark configuration, run in its own process.

Usage (normally by `run.py`): KERAS_BACKEND=jax python benchmarks/kerassl_side.py CONFIG_JSON OUT_JSON

The configuration's `method` picks the model: "simclr" (ResNet-18) or "mae" or
"dino" (a ViT), for throughput and quality rows alike.

One process per configuration, so backends, precision policies and XLA flags
never leak between rows and the peak resident memory is this row's alone.
"""

import inspect
import pathlib
import sys
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

import keras  # noqa: E402
from step_timer import StepTimer  # noqa: E402
import numpy as np  # noqa: E402

import kerassl  # noqa: E402
import kerassl.augment  # noqa: E402
import kerassl.backbones  # noqa: E402
import kerassl.vit  # noqa: E402
import shared  # noqa: E402

# The constructor arguments of each ViT method that the benchmark configuration sets
# (the lightly side builds the same from the same configuration).
METHOD_ARGUMENTS = {
    "mae": ("mask_ratio", "decoder_dim", "decoder_depth", "decoder_num_heads", "normalize_targets"),
    "dino": ("head_hidden_dim", "head_bottleneck_dim", "head_output_dim", "student_temperature",
             "teacher_temperature", "center_momentum", "momentum_start", "num_local_crops",
             "local_crop_size", "global_crop_scale", "local_crop_scale", "gradient_clip_norm"),
}


def versions():
    facts = {"keras": keras.__version__, "kerassl": kerassl.__version__}
    backend = keras.config.backend()
    facts["backend"] = backend
    if backend == "tensorflow":
        import tensorflow as tf

        facts["tensorflow"] = tf.__version__
    elif backend == "jax":
        import jax

        facts["jax"] = jax.__version__
        facts["jax_devices"] = [str(d) for d in jax.devices()]
    return facts


def trainable_parameters(model):
    # Trainable only, as PyTorch's `parameters()` (BatchNorm statistics are buffers there).
    return int(sum(np.prod(w.shape) for w in model.trainable_weights))


def build_encoder(config):
    size = config["image_size"]
    if config["encoder"] == "resnet18":
        return kerassl.backbones.resnet18(input_shape=(size, size, 3), stem="cifar")
    if config["encoder"] == "small_convnet":
        return kerassl.backbones.small_convnet(input_shape=(size, size, 3), width=8, feature_dim=32)
    raise ValueError(f"unknown encoder {config['encoder']!r}")


def build_model(config, **extra):
    """The model of the configured method ("simclr", "mae" or "dino").

    `extra`: further constructor arguments of a ViT method (the quality rows give
    DINO the length of its momentum schedule).
    """
    if config["precision"] == "bfloat16":
        keras.mixed_precision.set_global_policy("mixed_bfloat16")
    keras.utils.set_random_seed(config["seed"])
    method = config.get("method", "simclr")
    if method == "simclr":
        return build_simclr(config)
    return method_class(method)(
        build_vit(config), seed=config["seed"], **method_arguments(config), **extra
    )


def build_simclr(config):
    """kerassl's SimCLR with lightly's CIFAR-10 benchmark settings."""
    encoder = build_encoder(config)
    augmenter = kerassl.augment.simclr_augmenter(
        config["image_size"],
        jitter_strength=config["jitter_strength"],
        blur_probability=0.0,
        seed=config["seed"],
    )
    model = kerassl.SimCLR(
        encoder,
        projection_hidden_dim=config["projection_hidden_dim"],
        projection_dim=config["projection_dim"],
        temperature=config["temperature"],
        augmenter=augmenter,
        seed=config["seed"],
    )
    return model


def build_vit(config):
    """The ViT encoder of the MAE and DINO rows: `kerassl.vit.vit_tiny` at the default sizes."""
    return kerassl.vit.vit(
        image_size=config["image_size"],
        patch_size=config["patch_size"],
        hidden_dim=config["hidden_dim"],
        depth=config["depth"],
        num_heads=config["num_heads"],
        mlp_ratio=config["mlp_dim"] / config["hidden_dim"],
    )


def method_class(method):
    if method == "mae":
        from kerassl.methods.mae import MAE

        return MAE
    if method == "dino":
        from kerassl.methods.dino import DINO

        return DINO
    raise ValueError(f"unknown method {method!r}")


def method_arguments(config):
    """The configured constructor arguments of a ViT method."""
    return {key: config[key] for key in METHOD_ARGUMENTS[config["method"]]}


def non_default_arguments(config):
    """The configured arguments that differ from the method class's own defaults.

    Empty at the full-size configuration, where the recipe is kerassl's defaults; a
    name here means kerassl's defaults moved away from what the benchmark runs.
    """
    defaults = inspect.signature(method_class(config["method"])).parameters
    return sorted(
        key for key, value in method_arguments(config).items()
        if defaults[key].default is not None and not same_value(defaults[key].default, value)
    )


def same_value(a, b):
    """Equality that takes a JSON list for the tuple it stands for."""
    if isinstance(a, (tuple, list)) and isinstance(b, (tuple, list)):
        return list(a) == list(b)
    return a == b


def optimizer(config, total_steps):
    if config.get("method", "simclr") != "simclr":
        # MAE and DINO: AdamW at a constant rate (decoupled weight decay on both sides).
        return keras.optimizers.AdamW(config["learning_rate"], weight_decay=config["weight_decay"])
    learning_rate = config["learning_rate"] * config["batch_size"] / 256
    schedule = keras.optimizers.schedules.CosineDecay(learning_rate, max(total_steps, 1))
    # PyTorch's SGD adds weight_decay * w to the gradient before momentum
    # (coupled L2); Keras' weight_decay is decoupled (w -= lr * wd * w). With
    # momentum m the coupled form decays 1 / (1 - m) times as much per step in
    # steady state, so the equivalent decoupled value is wd / (1 - m).
    weight_decay = config["weight_decay"] / (1.0 - config["momentum"])
    return keras.optimizers.SGD(
        schedule, momentum=config["momentum"], weight_decay=weight_decay
    )


def throughput(config):
    """images/s of `model.fit` steps on uint8 batches; views and masks are made in the step."""
    model = build_model(config)
    jit = config["jit_compile"]
    model.compile(optimizer=optimizer(config, 1000), jit_compile=jit)
    steps = config["warmup_steps"] + config["timed_steps"]
    rng = np.random.default_rng(0)
    size = config["image_size"]
    images = rng.integers(0, 256, (steps * config["batch_size"], size, size, 3), dtype=np.uint8)
    timer = StepTimer()
    model.fit(images, batch_size=config["batch_size"], epochs=1, shuffle=False,
              verbose=0, callbacks=[timer])
    result = shared.summarize_step_times(
        timer.times, config["batch_size"], config["warmup_steps"], timer.cpu_times
    )
    result["jit_compile_resolved"] = getattr(model, "jit_compile", None)
    # DINO's `encoder` is the (frozen) teacher; the student is the one trained.
    result["parameters"] = trainable_parameters(getattr(model, "student_encoder", model.encoder))
    result["versions"] = versions()
    if config.get("method", "simclr") != "simclr":
        result.update(vit_method_facts(model, config))
    return result


def vit_method_facts(model, config):
    """What a MAE or DINO row ran, to check against the lightly side's row."""
    facts = {
        "trainable_parameters": trainable_parameters(model),
        "non_default_arguments": non_default_arguments(config),
    }
    if config["method"] == "dino":
        from kerassl.methods.dino import default_local_crop_size

        facts["default_local_crop_size"] = default_local_crop_size(
            config["image_size"], config["patch_size"]
        )
    return facts


def features(encoder, images, batch_size=512):
    return np.asarray(encoder.predict(images.astype("float32") / 255.0,
                                      batch_size=batch_size, verbose=0), dtype="float32")


def quality(config):
    """kNN accuracy of the encoder before and after training at a fixed budget.

    SimCLR, MAE or DINO (`method`); the kNN runs on `model.encoder` (DINO's
    teacher; the student's accuracy is recorded too, as `knn_accuracy_student`).
    """
    method = config.get("method", "simclr")
    x_train, y_train, x_test, y_test = shared.quality_data(config)
    steps_per_epoch = len(x_train) // config["batch_size"]
    total_steps = steps_per_epoch * config["epochs"]
    # DINO's teacher momentum follows a cosine over the whole run, as lightly's
    # `cosine_schedule(step, total_steps, ...)`; the fit below is one call per
    # epoch, so the schedule's length is given rather than counted per call.
    extra = {"momentum_schedule_steps": max(total_steps, 1)} if method == "dino" else {}
    model = build_model(config, **extra)
    model.build((None,) + x_train.shape[1:])
    knn = dict(k=config["knn_k"], temperature=config["knn_temperature"])

    def knn_of(encoder):
        return shared.knn_accuracy(
            features(encoder, x_train), y_train, features(encoder, x_test), y_test, **knn
        )

    started = time.perf_counter()
    random_init = knn_of(model.encoder)
    knn_seconds = time.perf_counter() - started
    model.compile(optimizer=optimizer(config, total_steps), jit_compile=config["jit_compile"])
    timer = StepTimer()
    # Keras keeps a last partial batch; lightly's loader drops it (drop_last).
    # Training on the same number of full batches keeps the budgets equal.
    keep = steps_per_epoch * config["batch_size"]
    rng = np.random.default_rng(config["seed"])
    history = []
    started = time.perf_counter()
    for epoch in range(config["epochs"]):
        order = rng.permutation(len(x_train))[:keep]
        logs = model.fit(x_train[order], batch_size=config["batch_size"], epochs=epoch + 1,
                         initial_epoch=epoch, shuffle=False, verbose=0, callbacks=[timer])
        history.append({k: float(v[-1]) for k, v in logs.history.items()})
    train_seconds = time.perf_counter() - started
    result = {
        "knn_accuracy": knn_of(model.encoder),
        "knn_accuracy_random_init": random_init,
        "train_s": round(train_seconds, 1),
        "knn_s": round(knn_seconds, 1),
        "steps": total_steps,
        "train_images_per_s": total_steps * config["batch_size"] / max(train_seconds, 1e-9),
        "median_step_s": float(np.median(timer.times[1:] or timer.times)),
        "history": history,
        # DINO's `encoder` is the (frozen) teacher; the student is the one trained.
        "parameters": trainable_parameters(getattr(model, "student_encoder", model.encoder)),
        "versions": versions(),
    }
    if method == "dino":
        result["knn_accuracy_student"] = knn_of(model.student_encoder)
    if method != "simclr":
        result.update(vit_method_facts(model, config))
    return result


def run(config):
    if config["task"] == "throughput":
        return throughput(config)
    if config["task"] == "quality":
        return quality(config)
    raise ValueError(f"unknown task {config['task']!r}")


if __name__ == "__main__":
    shared.worker_main(run)
