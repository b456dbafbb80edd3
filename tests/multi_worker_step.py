"""One SimCLR training step, as one worker of a MultiWorkerMirroredStrategy or on one device.

Run by `tests/test_multi_worker.py` in processes of its own:
`python -m tests.multi_worker_step OUT.npz` with `TF_CONFIG` set (a worker:
it trains on its half of the global batch) or unset (the reference: one device, the
whole global batch). It writes the logged loss and the weights before and after the
step to OUT.npz.
"""

import os
import sys

os.environ["KERAS_BACKEND"] = "tensorflow"
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402

GLOBAL_BATCH = 8
SIZE = 16


def global_batch():
    # float32 in [0, 1]: TensorFlow's collectives refuse uint8, which Keras reduces
    # across workers while it reads a distributed dataset.
    images = np.random.default_rng(0).integers(0, 256, (GLOBAL_BATCH, SIZE, SIZE, 3))
    return (images / 255.0).astype("float32")


def make_model(keras, kerassl):
    inputs = keras.Input((SIZE, SIZE, 3))
    x = keras.layers.Conv2D(8, 3, padding="same", activation="relu")(inputs)
    x = keras.layers.BatchNormalization()(x)
    x = keras.layers.Conv2D(16, 3, strides=2, padding="same", activation="relu")(x)
    encoder = keras.Model(inputs, keras.layers.GlobalAveragePooling2D()(x), name="tiny")
    model = kerassl.SimCLR(
        encoder, projection_hidden_dim=16, projection_dim=8, augmenter=keras.layers.Identity(), seed=0
    )
    model.build((None, SIZE, SIZE, 3))
    return model


def main(out):
    import tensorflow as tf  # the strategy must exist before any other TensorFlow op

    worker = bool(os.environ.get("TF_CONFIG"))
    strategy = tf.distribute.MultiWorkerMirroredStrategy() if worker else None

    import keras

    import kerassl
    from kerassl import distributed

    keras.utils.set_random_seed(0)
    images = global_batch()
    if worker:
        replicas = strategy.num_replicas_in_sync
        local = GLOBAL_BATCH // replicas

        def per_worker(context):
            start = context.input_pipeline_id * local
            return tf.data.Dataset.from_tensor_slices(images[start : start + local]).batch(local)

        with strategy.scope():
            model = make_model(keras, kerassl)
            distributed.synchronize_batch_norm(model)  # statistics over both workers' images
            start = [np.array(w) for w in model.get_weights()]
            model.compile(optimizer=keras.optimizers.SGD(0.5))
            data = strategy.distribute_datasets_from_function(per_worker)
        history = model.fit(data, epochs=1, steps_per_epoch=1, verbose=0)
    else:
        replicas = 1
        model = make_model(keras, kerassl)
        start = [np.array(w) for w in model.get_weights()]
        model.compile(optimizer=keras.optimizers.SGD(0.5))
        history = model.fit(images, batch_size=GLOBAL_BATCH, epochs=1, shuffle=False, verbose=0)
    after = [np.array(w) for w in model.get_weights()]
    np.savez(
        out, loss=history.history["loss"][0], replicas=replicas,
        **{f"start_{i}": w for i, w in enumerate(start)},
        **{f"after_{i}": w for i, w in enumerate(after)},
    )


if __name__ == "__main__":
    main(sys.argv[1])
