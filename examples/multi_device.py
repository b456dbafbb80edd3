"""Train on several devices, in mixed precision, with Keras' own distribution APIs.

What it shows: kerassl methods have no training engine of their own, so they scale out
the way any Keras model does. On JAX, `keras.distribution.DataParallel` shards every
batch over the devices and the step is traced once over the global batch (the
contrastive negatives and BatchNorm statistics span all devices). On TensorFlow, the
model is built and compiled under `tf.distribute.MirroredStrategy`: each replica runs
the step on its slice of the batch and the gradients are summed. Mixed precision is
one global policy set before the model is built: `mixed_float16` on GPUs,
`mixed_bfloat16` elsewhere (variables stay float32). SimCLR pretrains a ResNet-18 on
CIFAR-10 this way and its kNN accuracy is measured at the end.

Pick the backend with `KERAS_BACKEND=jax` or `tensorflow` (the default).

What it needs:
- data: CIFAR-10 (`keras.datasets` download, or `--cifar10-path`);
- several GPUs (or TPU cores) for the point of it; it runs on one device too.
  Full size (50,000 images, 100 epochs, global batch 1,024): about 30 min on 4 recent
  GPUs (estimated); on a CPU it is the single-device run of `pretrain_simclr.py`;
- `--smoke`: 2 virtual CPU devices made before the backend starts (JAX's
  `jax_num_cpu_devices`, TensorFlow's logical CPU devices), 512 digits, 2 epochs,
  mixed bfloat16: TensorFlow 13 s of CPU time and 40-55 s wall, JAX 22 s and
  80-90 s (measured on the shared 2-core machine under load ~14).

What it prints and writes (in `--output`, default `outputs/multi_device/`):
- the backend, devices, distribution, precision policy, global and per-device batch;
- a table: epoch, loss, images per second; then the kNN accuracy;
- `training.png` and `results.json`.

Run:
    KERAS_BACKEND=jax python examples/multi_device.py --cifar10-path ../shared/data/cifar10-jpeg.tar.gz
    KERAS_BACKEND=tensorflow python examples/multi_device.py --precision float32
    KERAS_BACKEND=jax python examples/multi_device.py --smoke
"""

import argparse
import contextlib
import json
import os
import time

import keras  # importing keras starts no device: virtual devices can still be made


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cifar10-path", help="local CIFAR-10 copy (tarball, folder or .npz)")
    parser.add_argument("--precision", choices=("mixed", "float32"), default="mixed")
    parser.add_argument("--epochs", type=int, default=100)
    parser.add_argument("--batch-size", type=int, default=1024, help="global batch, over all devices")
    parser.add_argument("--cpu-devices", type=int, default=0,
                        help="split the CPU into this many virtual devices (to try it without GPUs)")
    parser.add_argument("--output", default="outputs/multi_device")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--smoke", action="store_true", help="2 virtual CPU devices, digits, 2 epochs")
    return parser.parse_args(argv)


def virtual_cpu_devices(count):
    """Splits the host CPU into `count` devices; must run before the backend starts."""
    if keras.config.backend() == "jax":
        import jax

        jax.config.update("jax_num_cpu_devices", count)
    elif keras.config.backend() == "tensorflow":
        import tensorflow as tf

        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(
            cpu, [tf.config.LogicalDeviceConfiguration() for _ in range(count)]
        )


def distribution_scope():
    """Sets up data parallelism for the backend; returns (scope, description, device count)."""
    backend = keras.config.backend()
    if backend == "jax":
        devices = keras.distribution.list_devices()
        keras.distribution.set_distribution(keras.distribution.DataParallel(devices=devices))
        return contextlib.nullcontext(), f"keras.distribution.DataParallel over {devices}", len(devices)
    if backend == "tensorflow":
        import tensorflow as tf

        gpus = tf.config.list_logical_devices("GPU")
        devices = [d.name for d in (gpus or tf.config.list_logical_devices("CPU"))]
        strategy = tf.distribute.MirroredStrategy(devices=devices)
        return strategy.scope(), f"tf.distribute.MirroredStrategy over {devices}", strategy.num_replicas_in_sync
    raise SystemExit(f"this example covers the jax and tensorflow backends, not {backend!r}")


class Throughput(keras.callbacks.Callback):
    """Logs the images per second of each epoch."""

    def __init__(self, images_per_epoch):
        super().__init__()
        self.images_per_epoch = images_per_epoch

    def on_epoch_begin(self, epoch, logs=None):
        self.start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        logs["images_per_second"] = self.images_per_epoch / (time.perf_counter() - self.start)


def main(argv=None):
    args = parse_args(argv)
    if args.smoke:
        args.cpu_devices, args.epochs, args.batch_size = args.cpu_devices or 2, 2, 128

    if args.cpu_devices:
        virtual_cpu_devices(args.cpu_devices)  # before anything touches a device
    import kerassl

    on_gpu = any(d.startswith("gpu") for d in keras.distribution.list_devices())
    if args.precision == "mixed":
        keras.mixed_precision.set_global_policy("mixed_float16" if on_gpu else "mixed_bfloat16")
    scope, description, devices = distribution_scope()
    if args.batch_size % devices:
        raise SystemExit(f"--batch-size {args.batch_size} must divide by the {devices} devices")

    os.makedirs(args.output, exist_ok=True)
    if args.smoke:
        (x, y), (x_test, y_test) = kerassl.datasets.load_digits(image_size=16, channels=3)
        x, y = x[:512], y[:512]
    else:
        (x, y), (x_test, y_test) = kerassl.datasets.cifar10(path=args.cifar10_path)
    print(f"backend {keras.config.backend()}: {description}")
    print(f"precision policy {keras.mixed_precision.global_policy().name}; global batch "
          f"{args.batch_size}, {args.batch_size // devices} per device")

    keras.utils.set_random_seed(args.seed)
    with scope:  # variables are created (mirrored, on TensorFlow) inside the scope
        if args.smoke:
            encoder = kerassl.backbones.small_convnet(x.shape[1:], width=16, feature_dim=None)
        else:
            encoder = kerassl.backbones.resnet18(input_shape=x.shape[1:], stem="cifar")
        model = kerassl.SimCLR(encoder, projection_hidden_dim=512, projection_dim=128, seed=args.seed)
        steps = args.epochs * (len(x) // args.batch_size)
        schedule = keras.optimizers.schedules.CosineDecay(0.06 * args.batch_size / 256, max(steps, 1))
        model.compile(optimizer=keras.optimizers.SGD(schedule, momentum=0.9, weight_decay=5e-4))
    images_per_epoch = len(x) // args.batch_size * args.batch_size
    history = model.fit(x, epochs=args.epochs, batch_size=args.batch_size, verbose=2,
                        callbacks=[Throughput(images_per_epoch)])
    keras.mixed_precision.set_global_policy("float32")

    knn = kerassl.evaluate.knn_accuracy(model.encoder, x, y, x_test, y_test,
                                        k=20 if args.smoke else 200, verbose=False)
    print("\n| epoch | loss | images/s |\n| --- | --- | --- |")
    logs = history.history
    for epoch, (loss, speed) in enumerate(zip(logs["loss"], logs["images_per_second"]), start=1):
        print(f"| {epoch} | {loss:.3f} | {speed:.0f} |")
    print(f"\nkNN accuracy {knn:.3f}; the first epoch includes tracing and compilation")
    kerassl.viz.loss_curve(history, os.path.join(args.output, "training.png"))
    results = {"backend": keras.config.backend(), "distribution": description, "devices": devices,
               "policy": "mixed" if args.precision == "mixed" else "float32",
               "history": {k: [float(v) for v in vs] for k, vs in logs.items()},
               "knn_accuracy": knn, "settings": vars(args)}
    with open(os.path.join(args.output, "results.json"), "w") as file:
        json.dump(results, file, indent=2)
    print("wrote training.png and results.json in", args.output)
    return results


if __name__ == "__main__":
    main()
