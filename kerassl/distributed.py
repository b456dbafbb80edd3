"""Data parallelism: what a training step needs to know about the other devices.

kerassl adds no training engine of its own; it trains under the two that Keras
already has, and this module is the one place that knows how they differ:

- JAX, `keras.distribution.DataParallel`: the step is traced once over the
  *global* batch and XLA shards it. Contrastive negatives, DINO's centre and
  BatchNorm statistics span every device with no code here: every helper
  below is the identity.
- TensorFlow, `tf.distribute.MirroredStrategy` (or any strategy with replicas
  in sync): each replica runs the step on its slice of the batch, and the
  optimizer sums the replicas' gradients. A method whose loss compares an
  image with the rest of the batch gathers the embeddings of all replicas
  (`all_gather`, whose gradient is the sum over replicas of the upstream
  gradient), offsets its positives' labels by `replica_index() * local_batch`,
  and its loss is scaled by `1 / num_replicas()` (`scale_for_replicas`,
  which Keras applies to compiled `Loss` objects but not to a raw
  `compute_loss`), so the summed gradient equals one device's on the global
  batch. Running statistics (DINO's centre) are averaged with
  `mean_across_replicas`. Two more things differ from one device unless
  fixed here: every replica would draw the same augmentations and masks (its
  `SeedGenerator` states are mirrored copies; `per_replica_random_streams`
  folds the replica index into each drawn seed), and Keras clips each
  replica's gradient before the cross-replica sum (`clip_after_summing`
  clips the sum instead).

All helpers are identities on one device, outside a strategy and on JAX and
torch, so a method calls them unconditionally. The TensorFlow replica-context
code is confined to this module.

Example:
```python
strategy = tf.distribute.MirroredStrategy()
with strategy.scope():
    model = kerassl.SimCLR(encoder)
    model.compile("adamw")
model.fit(images, batch_size=512)  # negatives span all replicas
```

Reference: Chen et al., "A Simple Framework for Contrastive Learning of
Visual Representations", ICML 2020 (https://arxiv.org/abs/2002.05709),
section 2.2 ("Global BN") and appendix B.1 (negatives gathered across cores);
lightly issue 1528 (a gather whose gradient was not summed over replicas).
"""

import types

import keras

# Replica r draws with seed (s + r * REPLICA_SEED_STRIDE, counter) where one
# device draws with (s, counter): the golden-ratio constant of Fibonacci
# hashing, so the replicas of one generator land far apart from the seeds
# kerassl gives its other generators (seed, seed + 1, seed + 100, ...).
REPLICA_SEED_STRIDE = 0x9E3779B1


def _replica_context():
    """TensorFlow's replica context when several replicas run in sync, else None."""
    if keras.config.backend() != "tensorflow":
        return None
    import tensorflow as tf

    context = tf.distribute.get_replica_context()
    if context is None or context.num_replicas_in_sync <= 1:
        return None
    return context


def num_replicas():
    """Replicas that each run the step on a slice of the batch (1 on JAX: it sees the global batch)."""
    if keras.config.backend() != "tensorflow":
        return 1
    import tensorflow as tf

    return int(tf.distribute.get_strategy().num_replicas_in_sync)


def replica_index():
    """This replica's position among `num_replicas()` (an int32 scalar tensor under TensorFlow, else 0)."""
    context = _replica_context()
    if context is None:
        return 0
    import tensorflow as tf

    return tf.cast(context.replica_id_in_sync_group, "int32")


def all_gather(x):
    """The rows of `x` from every replica, in replica order; its gradient sums over replicas.

    Replica r's rows sit at `[r * n, (r + 1) * n)` of the result. Every replica
    computes a loss on the gathered tensor, so the upstream gradient reaching
    replica r's rows is the sum of what each replica's loss sends back: the
    backward pass all-reduces the upstream gradient (SUM) and keeps this
    replica's rows. Keeping only the local replica's upstream gradient (the
    bug of lightly#1528) loses the other replicas' share of the negatives'
    gradient.

    Args:
        x: tensor (n, ...), the same n on every replica.

    Returns:
        Tensor (num_replicas * n, ...); `x` itself on one device and on JAX.
    """
    context = _replica_context()
    if context is None:
        return x
    import tensorflow as tf

    @tf.custom_gradient
    def gather(local):
        gathered = context.all_gather(tf.stop_gradient(local), axis=0)

        def grad(upstream):
            summed = context.all_reduce(tf.distribute.ReduceOp.SUM, upstream)
            rows = tf.shape(local)[0]
            start = tf.cast(context.replica_id_in_sync_group, "int32") * rows
            return summed[start : start + rows]

        return gathered, grad

    return gather(x)


def mean_across_replicas(x):
    """The mean of `x` over replicas (each replica's `x` is its local statistic); `x` on one device."""
    context = _replica_context()
    if context is None:
        return x
    import tensorflow as tf

    return context.all_reduce(tf.distribute.ReduceOp.MEAN, x)


def scale_for_replicas(loss):
    """`loss / num_replicas()`: the optimizer sums the replicas' gradients of it.

    Each replica's loss is a mean over its own slice; Keras sums the replicas'
    gradients, so dividing by the replica count makes the sum the gradient of
    the mean, as on one device. Keras' training step multiplies the logged loss
    back (`unscale_loss_for_distribution`), so the History shows the loss
    itself.
    """
    replicas = num_replicas()
    if replicas == 1:
        return loss
    return loss * (1.0 / replicas)


def check_batch_divides(batch_size, name="batch_size"):
    """Raises a clear error when the global batch does not split evenly over the devices.

    Args:
        batch_size: int or None (None: unknown, not checked).
        name: str. How the batch size was given, for the message.

    Returns:
        The device count the batch is split over (1 when nothing splits it).
    """
    devices = device_count()
    if batch_size is None or devices <= 1:
        return devices
    if int(batch_size) % devices:
        below = int(batch_size) // devices * devices
        raise ValueError(
            f"{name}={batch_size} does not divide by the {devices} devices the batch is "
            f"split over: each device takes batch / {devices} images. Use a multiple of "
            f"{devices}, e.g. {max(below, devices)} or {below + devices}."
        )
    return devices


def device_count():
    """How many devices split each batch: JAX's data-parallel mesh, or TensorFlow's replicas."""
    if keras.config.backend() == "jax":
        distribution = keras.distribution.distribution()
        mesh = getattr(distribution, "device_mesh", None)
        if mesh is None:
            return 1
        batch_axis = getattr(distribution, "batch_dim_name", None)
        if batch_axis in mesh.axis_names:
            return int(mesh.shape[mesh.axis_names.index(batch_axis)])
        return int(mesh.devices.size)
    return num_replicas()


def synchronize_batch_norm(model, synchronized=True):
    """Makes every BatchNormalization layer of `model` use statistics over all replicas.

    Under TensorFlow's MirroredStrategy each replica normalizes with its own
    slice's statistics unless a layer is `synchronized` (SimCLR's "global BN",
    which keeps the network from telling positives apart by their local batch
    statistics). Under JAX's DataParallel statistics already span the global
    batch, so this is only needed (and only allowed) on TensorFlow.

    Args:
        model: a Keras layer or model.
        synchronized: bool.

    Returns:
        The number of layers changed.

    Example:
    >>> kerassl.distributed.synchronize_batch_norm(encoder)
    """
    if synchronized and keras.config.backend() != "tensorflow":
        raise ValueError(
            "synchronized BatchNorm is a TensorFlow option; under JAX's DataParallel "
            "the step sees the global batch and BatchNorm statistics span it already."
        )
    layers = [
        layer
        for layer in model._flatten_layers(include_self=True)
        if isinstance(layer, keras.layers.BatchNormalization)
    ]
    for layer in layers:
        layer.synchronized = bool(synchronized)
    return len(layers)


def gather_batch(*tensors):
    """The global batch of each local tensor and this replica's first row, for a contrastive loss.

    Returns `(*gathered, offset)`, to pass after a loss's own arguments:
    `nt_xent(z1, z2, t, *gather_batch(z1, z2))`. On one device (and on JAX,
    whose step already sees the global batch) it is `(None, ..., None, 0)`, which
    the losses read as "the local batch is the batch".
    """
    if _replica_context() is None:
        return (*([None] * len(tensors)), 0)
    rows = keras.ops.shape(tensors[0])[0]
    return (*(all_gather(t) for t in tensors), replica_index() * rows)


def _replica_folded_next(generator, ordered=True):
    """`SeedGenerator.next` with this replica's index folded into the seed it returns.

    The state advances exactly as on one device (every replica makes the same
    draws), so saved states, resume and single-device runs are unchanged;
    only the seed handed to the random op differs by replica (replica 0
    keeps the seed one device would use).
    """
    seed = type(generator).next(generator, ordered)
    context = _replica_context()
    if context is None:
        return seed
    import tensorflow as tf

    replica = tf.cast(context.replica_id_in_sync_group, seed.dtype)
    return seed + tf.stack([replica * REPLICA_SEED_STRIDE, tf.zeros_like(replica)])


def per_replica_random_streams(model):
    """Makes every replica of a TensorFlow strategy draw its own augmentations, masks and noise.

    Under `MirroredStrategy` each `keras.random.SeedGenerator` state is a
    mirrored variable: every replica reads the same state, so without this
    every replica would draw the same crops, flips, masks and dropout for its
    slice, and the global batch would repeat one slice's randomness
    `num_replicas()` times, which one device never does. This makes each
    generator of `model` (kerassl's augmenters and masks and Keras' own
    random layers alike) fold the replica index into the seed of each draw.
    It changes nothing on one device, outside a strategy, and on JAX, whose
    `DataParallel` step draws once for the global batch. `SSLMethod` calls it
    at the start of every training and evaluation step; it is idempotent.

    Args:
        model: a Keras layer or model.

    Returns:
        The number of seed generators it now covers.

    Example:
    ```python
    with tf.distribute.MirroredStrategy().scope():
        model = kerassl.SimCLR(encoder)
        model.compile("adamw")
    model.fit(images, batch_size=512)  # each replica crops its 128 images its own way
    ```

    Reference: TensorFlow's guide "Random number generation", section
    "Creating generators inside a tf.distribute.Strategy scope" (replicas
    must be given distinct streams explicitly).
    """
    count = 0
    for layer in model._flatten_layers(include_self=True):
        for generator in getattr(layer, "_seed_generators", ()):
            if not isinstance(generator.__dict__.get("next"), types.MethodType):
                generator.next = types.MethodType(_replica_folded_next, generator)
            count += 1
    return count


def _clips(optimizer):
    return any(getattr(optimizer, name, None) for name in ("clipnorm", "clipvalue", "global_clipnorm"))


def _clip_summed_gradients(optimizer, grads):
    """The optimizer's own clipping, applied to the gradient summed over replicas.

    Keras' `BaseOptimizer._backend_apply_gradients` clips, then the TensorFlow
    optimizer sums the replicas' gradients: each replica's share is clipped on
    its own. Here the replicas' gradients are summed first (one extra
    all-reduce), clipped as one device would, and divided by the replica
    count, so the optimizer's own sum gives back the clipped sum.
    """
    clip = type(optimizer)._clip_gradients
    context = _replica_context()
    if context is None or not _clips(optimizer):
        return clip(optimizer, grads)
    import tensorflow as tf

    present = [i for i, g in enumerate(grads) if g is not None]
    dense = [tf.convert_to_tensor(grads[i]) for i in present]
    summed = context.all_reduce(tf.distribute.ReduceOp.SUM, dense)
    clipped = clip(optimizer, list(summed))
    share = 1.0 / context.num_replicas_in_sync
    result = list(grads)
    for index, gradient in zip(present, clipped):
        result[index] = gradient * tf.cast(share, gradient.dtype)
    return result


def clip_after_summing(optimizer):
    """Makes `clipnorm`, `global_clipnorm` and `clipvalue` act on the gradient summed over replicas.

    Keras 3 (`keras/src/optimizers/base_optimizer.py`, `_backend_apply_gradients`)
    clips each replica's gradient inside the replica, and only then does the
    TensorFlow optimizer sum them (`_all_reduce_sum_gradients`): with 4
    replicas a `global_clipnorm=1` update can reach norm 4, and clipping
    differs from one device whenever any replica's share is clipped. This
    wraps the optimizer's clipping (and a `LossScaleOptimizer`'s inner
    optimizer's) so the sum is clipped instead, the same update as one
    device on the global batch. It costs one more all-reduce of the
    gradients, only in steps that clip, under a strategy with several
    replicas; elsewhere (one device, JAX, whose step sees the global batch)
    clipping is Keras' own. `SSLMethod.compile` calls it.

    Args:
        optimizer: a Keras optimizer.

    Returns:
        `optimizer`.

    Example:
    ```python
    with tf.distribute.MirroredStrategy().scope():
        model = kerassl.SimCLR(encoder)
        model.compile(keras.optimizers.AdamW(1e-3, global_clipnorm=1.0))  # clips the summed gradient
    ```

    Reference: keras-team/keras, `BaseOptimizer._backend_apply_gradients` and
    `TFOptimizer._backend_update_step` (Keras 3.15).
    """
    if keras.config.backend() != "tensorflow":
        return optimizer
    for inner in (optimizer, getattr(optimizer, "inner_optimizer", None)):
        if inner is None or isinstance(inner.__dict__.get("_clip_gradients"), types.MethodType):
            continue
        if not callable(getattr(type(inner), "_clip_gradients", None)):
            if not _clips(inner):
                continue
            raise NotImplementedError(
                f"{type(inner).__name__} has no `_clip_gradients` (a Keras newer than 3.15?): "
                "kerassl cannot make it clip the gradient summed over replicas. Clip without "
                "the optimizer, or train on one device or on JAX's DataParallel."
            )
        inner._clip_gradients = types.MethodType(_clip_summed_gradients, inner)
    return optimizer


def _multi_worker():
    """True inside a `MultiWorkerMirroredStrategy` that spans several workers."""
    if keras.config.backend() != "tensorflow":
        return False
    import tensorflow as tf

    strategy = tf.distribute.get_strategy()
    if not isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        return False
    in_multi_worker_mode = getattr(strategy.extended, "_in_multi_worker_mode", lambda: True)
    return bool(in_multi_worker_mode())


def logs_for_multi_worker(logs):
    """A training step's logs in the shape Keras 3 can reduce across workers.

    Under a `MultiWorkerMirroredStrategy` spanning several workers, Keras 3.15
    reduces each replica's logs with `strategy.reduce("MEAN", value, axis=0)`
    (`reduce_per_replica` in keras/src/backend/tensorflow/trainer.py), which
    fails on the scalar metrics every step returns ("Invalid reduction
    dimension 0 for input with 0 dimensions", tensorflow#72388). Giving each
    value a leading axis of length 1 makes that reduction the mean over
    replicas, the same as `MirroredStrategy`'s. Elsewhere the logs are returned
    as they are. `SSLMethod.train_step` and `test_step` call it.

    Args:
        logs: dict of metric values.

    Returns:
        dict.

    Example:
    ```python
    def train_step(self, *args):
        return distributed.logs_for_multi_worker(super().train_step(*args))
    ```

    Reference: https://github.com/tensorflow/tensorflow/issues/72388
    """
    if not isinstance(logs, dict) or not _multi_worker():
        return logs
    return {
        name: keras.ops.reshape(value, (1,)) if len(getattr(value, "shape", (0,))) == 0 else value
        for name, value in logs.items()
    }
