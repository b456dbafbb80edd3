"""Image-text retrieval recall@k for CLIP-style models."""

import numpy as np

# Similarity rows scored at once: 1,024 queries against a 100,000-item gallery is 400 MB.
_QUERY_CHUNK = 1024


def _check_k(k):
    ks = (k,) if isinstance(k, (int, np.integer)) else tuple(k)
    if not ks or any(not isinstance(v, (int, np.integer)) or v < 1 for v in ks):
        raise ValueError(f"k must be a positive int or a list of them; got {k!r}.")
    return tuple(int(v) for v in ks)


def _hits_before(similarity, positives):
    """Per query: how many non-positive items score above its best positive."""
    best_positive = np.where(positives, similarity, -np.inf).max(axis=1, keepdims=True)
    return np.sum((similarity > best_positive) & ~positives, axis=1)


def recall_at_k(image_embeddings, text_embeddings, caption_ids, k=(1, 5, 10)):
    """Recall@k from embeddings: images (N, D), distinct captions (M, D), caption_ids (N,).

    Image i's positive is caption `caption_ids[i]`; caption m's positives are
    all images i with `caption_ids[i] == m`. A query scores a hit at k when a
    positive is among its k most similar gallery items.

    Returns:
        dict: `image_to_text_recall@k` and `text_to_image_recall@k` for each k.

    Example:
    >>> kerassl.retrieval.recall_at_k(image_z, text_z, np.arange(len(image_z)), k=(1, 5))
    """
    ks = _check_k(k)
    images = np.asarray(image_embeddings, "float32")
    texts = np.asarray(text_embeddings, "float32")
    caption_ids = np.asarray(caption_ids)
    if images.ndim != 2 or texts.ndim != 2 or images.shape[1] != texts.shape[1]:
        raise ValueError(
            f"image and caption embeddings must be (N, D) and (M, D) with the same D; got "
            f"{images.shape} and {texts.shape}."
        )
    if caption_ids.shape != (len(images),) or caption_ids.dtype.kind not in "iu":
        raise ValueError(
            f"caption_ids must be one integer caption index per image, shape ({len(images)},); "
            f"got shape {caption_ids.shape} and dtype {caption_ids.dtype}."
        )
    if len(caption_ids) and (caption_ids.min() < 0 or caption_ids.max() >= len(texts)):
        raise ValueError(
            f"caption_ids must index the {len(texts)} captions; found "
            f"[{caption_ids.min()}, {caption_ids.max()}]."
        )
    image_ranks, text_ranks = [], []
    for start in range(0, len(images), _QUERY_CHUNK):
        rows = slice(start, start + _QUERY_CHUNK)
        similarity = images[rows] @ texts.T
        positives = caption_ids[rows, None] == np.arange(len(texts))[None, :]
        image_ranks.append(_hits_before(similarity, positives))
    for start in range(0, len(texts), _QUERY_CHUNK):
        ids = np.arange(start, min(start + _QUERY_CHUNK, len(texts)))
        similarity = texts[ids] @ images.T
        positives = ids[:, None] == caption_ids[None, :]
        text_ranks.append(_hits_before(similarity, positives))
    image_ranks, text_ranks = np.concatenate(image_ranks), np.concatenate(text_ranks)
    result = {}
    for value in ks:
        result[f"image_to_text_recall@{value}"] = float(np.mean(image_ranks < value))
        result[f"text_to_image_recall@{value}"] = float(np.mean(text_ranks < value))
    return result


def retrieval_recall(clip, images, captions, k=(1, 5, 10), batch_size=256):
    """Image-to-text and text-to-image recall@k of a CLIP model on (image, caption) pairs.

    Row i of `captions` describes image i. Identical captions (after
    tokenization) are one gallery item: captions made from labels with
    templates repeat, and a model cannot rank copies of one text apart. So
    image -> text searches the distinct captions and hits when its own caption
    is in the top k; text -> image queries each distinct caption once and hits
    when any image carrying it is in the top k. With unique captions (as in
    COCO-style data) this is the usual recall@k. Chance level at k=1 is about
    1 / (number of distinct captions) for image -> text and the share of images
    carrying a caption for text -> image.

    Args:
        clip: a `kerassl.CLIP` (anything with `encode_image`, `encode_text`
            and `tokenizer`).
        images: uint8 or [0, 1] float array (N, H, W, C).
        captions: N strings, or int token ids (N, max_length).
        k: int or tuple of int.
        batch_size: int. For encoding.

    Returns:
        dict of floats: `image_to_text_recall@k` and `text_to_image_recall@k`.

    Example:
    >>> r = kerassl.evaluate.retrieval_recall(clip, x_test, test_captions, k=(1, 5, 10))
    >>> r["image_to_text_recall@1"]
    """
    from kerassl.captions import check_pairs

    ks = _check_k(k)
    images, tokens = check_pairs(images, captions, clip.tokenizer)
    distinct, caption_ids = np.unique(tokens, axis=0, return_inverse=True)
    image_embeddings = clip.encode_image(images, batch_size=batch_size)
    text_embeddings = clip.encode_text(distinct, batch_size=batch_size)
    return recall_at_k(image_embeddings, text_embeddings, caption_ids.reshape(-1), ks)
