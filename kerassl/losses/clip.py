"""CLIP's contrastive loss and batch retrieval accuracies as pure `keras.ops` functions.

Reference: Radford et al., "Learning Transferable Visual Models From Natural
Language Supervision", ICML 2021 (https://arxiv.org/abs/2103.00020), figure 3.
"""

from keras import ops

from kerassl.losses.contrastive import check_pair, l2_normalize


def _check_scale(logit_scale):
    if isinstance(logit_scale, (int, float)) and not logit_scale > 0:
        raise ValueError(f"logit_scale must be positive; got {logit_scale}.")


def clip_logits(image_embeddings, text_embeddings, logit_scale):
    """Scaled cosine similarities (N images, N texts) of two embedding batches."""
    check_pair(image_embeddings, text_embeddings, "image and text embeddings")
    _check_scale(logit_scale)
    images = l2_normalize(image_embeddings)
    texts = l2_normalize(text_embeddings)
    return ops.cast(logit_scale, "float32") * ops.matmul(images, ops.transpose(texts))


def clip_loss(
    image_embeddings, text_embeddings, logit_scale, batch_images=None, batch_texts=None, offset=0
):
    """Symmetric cross-entropy: each image must pick its text among N, and each text its image.

    Row i of both batches is a matching pair. Embeddings are L2-normalized
    here (idempotent if they already are); the loss is the mean of the
    image-to-text and text-to-image cross-entropies over the logits
    `logit_scale * cos(image_i, text_j)`.

    On several devices, the local images pick among the texts of the global
    batch (`batch_texts`, from `kerassl.distributed.all_gather`) and the local
    texts among its images, the labels offset by `offset` (this device's
    first row); the mean over devices is the one-device loss on the global batch.

    Args:
        image_embeddings: (N, D) tensor.
        text_embeddings: (N, D) tensor, row i describing image i.
        logit_scale: float or scalar tensor > 0. Inverse temperature (CLIP
            learns it, starting at 1 / 0.07 and clamped at 100).
        batch_images: (M, D) tensor or None. The global batch's image
            embeddings; None: `image_embeddings` (one device).
        batch_texts: (M, D) tensor or None. Likewise for texts.
        offset: int or int scalar tensor. Row of the global batch where the
            local rows start.

    Returns:
        A float32 scalar.

    Example:
    >>> loss = kerassl.losses_clip.clip_loss(image_z, text_z, logit_scale=1 / 0.07)
    """
    if batch_images is None and batch_texts is None:
        logits = clip_logits(image_embeddings, text_embeddings, logit_scale)
        labels = ops.arange(ops.shape(logits)[0])
        image_to_text = ops.sparse_categorical_crossentropy(labels, logits, from_logits=True)
        text_to_image = ops.sparse_categorical_crossentropy(
            labels, ops.transpose(logits), from_logits=True
        )
        return 0.5 * (ops.mean(image_to_text) + ops.mean(text_to_image))
    if batch_images is None or batch_texts is None:
        raise ValueError("pass both batch_images and batch_texts (the gathered embeddings), or neither.")
    check_pair(image_embeddings, text_embeddings, "image and text embeddings")
    check_pair(batch_images, batch_texts, "gathered image and text embeddings")
    _check_scale(logit_scale)
    scale = ops.cast(logit_scale, "float32")
    image_logits = scale * ops.matmul(l2_normalize(image_embeddings), ops.transpose(l2_normalize(batch_texts)))
    text_logits = scale * ops.matmul(l2_normalize(text_embeddings), ops.transpose(l2_normalize(batch_images)))
    labels = ops.arange(ops.shape(image_embeddings)[0], dtype="int32") + ops.cast(offset, "int32")
    image_to_text = ops.sparse_categorical_crossentropy(labels, image_logits, from_logits=True)
    text_to_image = ops.sparse_categorical_crossentropy(labels, text_logits, from_logits=True)
    return 0.5 * (ops.mean(image_to_text) + ops.mean(text_to_image))


def clip_accuracy(image_embeddings, text_embeddings, same_text=None):
    """Top-1 retrieval accuracies inside a batch: (image -> text, text -> image).

    Image i scores a hit when its most similar text is text i; text j when
    its most similar image is image j. With `same_text`, a (N, N) boolean
    matrix marking identical texts (captions made from labels with templates
    repeat), picking an identical copy of the right text also counts: a model
    cannot tell copies apart, so an index-only score would cap below 1.

    Args:
        image_embeddings: (N, D) tensor.
        text_embeddings: (N, D) tensor.
        same_text: optional (N, N) bool tensor, True where texts i and j are equal.

    Returns:
        Two float32 scalars in [0, 1].

    Example:
    >>> i2t, t2i = kerassl.losses_clip.clip_accuracy(image_z, text_z)
    """
    similarity = clip_logits(image_embeddings, text_embeddings, 1.0)
    size = ops.shape(similarity)[0]
    if same_text is None:
        same_text = ops.eye(size, dtype="bool")
    same_text = ops.cast(same_text, "float32")
    best_text = ops.one_hot(ops.argmax(similarity, axis=1), size, dtype="float32")
    best_image = ops.one_hot(ops.argmax(similarity, axis=0), size, dtype="float32")
    # Row i of best_text picks text j; a hit when text j equals text i.
    image_to_text = ops.mean(ops.sum(best_text * same_text, axis=1))
    # Column j of similarity picks image i for text j; a hit when text i equals text j.
    text_to_image = ops.mean(ops.sum(best_image * same_text, axis=1))
    return image_to_text, text_to_image
