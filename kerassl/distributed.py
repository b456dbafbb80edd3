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
  `mean_across_replicas`.

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

import keras


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
