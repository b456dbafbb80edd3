"""Text side of image-text methods: a tokenizer that saves with the model, and a text encoder.

Why the tokenizer is Python and not a layer: strings cannot enter a compiled
JAX (or torch) program, and Keras's string layers (`TextVectorization`,
`StringLookup`) run only on TensorFlow tensors. So tokenization happens
*before* the compiled step, in NumPy: `Tokenizer(captions)` returns int32 ids,
`kerassl.CLIP.fit` maps string datasets through it in the input pipeline, and
`CLIP.encode_text(list_of_str)` tokenizes then runs the model. The graph only
ever sees integer ids, so the same model runs on every backend. The tokenizer
is a small registered Keras-serializable object whose config holds its whole
vocabulary: stored in the CLIP model's config, it round-trips through a
`.keras` file in safe mode with no custom objects.

Two schemes:
- word level (`Tokenizer.from_texts(captions)`): a vocabulary of the words and
  punctuation seen in the training captions. Small data learns fastest this
  way; unseen words map to `<unk>` (and `unknown_words` tells you which).
- byte level (`Tokenizer()` with no vocabulary): UTF-8 bytes, 260 ids, no
  vocabulary to build and no unknown words, at the price of longer sequences
  and a text encoder that must learn to spell.
"""

import re
import warnings

import keras
import numpy as np
from keras import ops

from kerassl.registry import register

PAD, UNKNOWN, START, END = "<pad>", "<unk>", "<start>", "<end>"
ACTIVATIONS = ("gelu", "quick_gelu")
SPECIAL_TOKENS = (PAD, UNKNOWN, START, END)
PAD_ID, UNKNOWN_ID, START_ID, END_ID = 0, 1, 2, 3
BYTE_VOCAB_SIZE = len(SPECIAL_TOKENS) + 256

# Words (letters, digits, underscore; any script) and single punctuation marks.
_WORD_PATTERN = re.compile(r"\w+|[^\w\s]")


def _as_text(caption, index):
    if isinstance(caption, bytes):
        caption = caption.decode("utf-8")
    elif isinstance(caption, np.str_):
        caption = str(caption)
    if not isinstance(caption, str):
        raise TypeError(
            f"caption {index} is {type(caption).__name__} ({caption!r}), not a string. "
            "Captions must be strings; class labels become captions with "
            "`kerassl.captions.captions_from_labels(labels, class_names)`."
        )
    if not caption.strip():
        raise ValueError(
            f"caption {index} is empty ({caption!r}): every image needs a caption with "
            "at least one word. Drop those pairs or write a caption for them."
        )
    return caption


def check_texts(texts, what="captions"):
    """Returns `texts` as a list of non-empty Python strings, or raises a clear error.

    Args:
        texts: a str, or a list / tuple / 1-D array of str or UTF-8 bytes.
        what: str. How the message names the input.
    """
    if isinstance(texts, (str, bytes)):
        texts = [texts]
    if isinstance(texts, np.ndarray):
        if texts.ndim != 1:
            raise ValueError(f"{what} must be a 1-D list of strings; got shape {texts.shape}.")
        if texts.dtype.kind not in "USO":
            raise TypeError(
                f"{what} have dtype {texts.dtype}, not strings. Pass one caption string "
                "per image, or token ids of shape (N, max_length); labels become "
                "captions with `kerassl.captions.captions_from_labels`."
            )
        texts = texts.tolist()
    if not isinstance(texts, (list, tuple)):
        raise TypeError(f"{what} must be a list of strings; got {type(texts).__name__}.")
    if len(texts) == 0:
        raise ValueError(f"{what} are empty: at least one string is needed.")
    return [_as_text(text, i) for i, text in enumerate(texts)]


@register
class Tokenizer:
    """Turns strings into fixed-length int32 token ids, in NumPy, before the model.

    Every sequence is `<start> tokens... <end>` padded with 0 (`<pad>`) to
    `max_length`; longer texts are cut so that `<end>` stays last. Id 0 is
    always padding, so any text encoder can find the true length.

    Args:
        vocabulary: list of str or None. Word-level tokens (without the four
            special tokens, which always take ids 0-3). None means byte level:
            the UTF-8 bytes of the text, ids 4-259.
        max_length: int >= 3. Length of every token sequence.
        lowercase: bool. Lowercase texts first (word level only).

    Example:
    ```python
    tokenizer = kerassl.text.Tokenizer.from_texts(captions, max_length=16)
    ids = tokenizer(["a photo of a cat."])        # int32 array (1, 16)
    text_encoder = kerassl.text.TextEncoder(tokenizer.vocab_size, max_length=16)
    ```
    """

    def __init__(self, vocabulary=None, max_length=32, lowercase=True):
        if int(max_length) < 3:
            raise ValueError(
                f"max_length must be at least 3 (<start>, one token, <end>); got {max_length}."
            )
        self.max_length = int(max_length)
        self.lowercase = bool(lowercase)
        if vocabulary is None:
            self.vocabulary = None
            self._index = None
        else:
            vocabulary = [str(token) for token in vocabulary]
            clashes = sorted(set(vocabulary) & set(SPECIAL_TOKENS))
            if clashes:
                raise ValueError(f"vocabulary must not contain the special tokens {clashes}.")
            if len(set(vocabulary)) != len(vocabulary):
                raise ValueError("vocabulary contains duplicate tokens.")
            self.vocabulary = vocabulary
            self._index = {token: i + len(SPECIAL_TOKENS) for i, token in enumerate(vocabulary)}

    @classmethod
    def from_texts(cls, texts, max_length=32, max_tokens=None, min_count=1, lowercase=True):
        """Builds a word-level vocabulary from training texts, most frequent words first.

        Args:
            texts: list of str. The training captions.
            max_length: int. Length of every token sequence.
            max_tokens: int or None. Keep at most this many words.
            min_count: int. Drop words seen fewer times.
            lowercase: bool.

        Example:
        >>> tok = kerassl.text.Tokenizer.from_texts(["a cat.", "a dog."])
        >>> tok.vocabulary
        ['a', '.', 'cat', 'dog']
        """
        texts = check_texts(texts)
        counts = {}
        splitter = cls(None, max_length, lowercase)
        for text in texts:
            for word in splitter.split(text):
                counts[word] = counts.get(word, 0) + 1
        # Most frequent first, ties in order of first appearance (dicts keep it): deterministic.
        words = sorted(counts, key=lambda word: -counts[word])
        words = [word for word in words if counts[word] >= min_count]
        if max_tokens is not None:
            words = words[: int(max_tokens)]
        return cls(words, max_length, lowercase)

    @property
    def vocab_size(self):
        """Number of distinct ids (special tokens included): the text encoder's input size."""
        if self.vocabulary is None:
            return BYTE_VOCAB_SIZE
        return len(SPECIAL_TOKENS) + len(self.vocabulary)

    def split(self, text):
        """The word-level pieces of one text (lowercased if asked)."""
        if self.lowercase:
            text = text.lower()
        return _WORD_PATTERN.findall(text)

    def encode(self, text):
        """Ids of one text without start, end or padding."""
        if self.vocabulary is None:
            return [byte + len(SPECIAL_TOKENS) for byte in text.encode("utf-8")]
        return [self._index.get(word, UNKNOWN_ID) for word in self.split(text)]

    def __call__(self, texts):
        """Tokenizes a list of strings into an int32 array (N, max_length)."""
        texts = check_texts(texts)
        ids = np.zeros((len(texts), self.max_length), "int32")
        for row, text in enumerate(texts):
            body = self.encode(text)[: self.max_length - 2]
            sequence = [START_ID, *body, END_ID]
            ids[row, : len(sequence)] = sequence
        return ids

    def decode(self, ids):
        """Inverse of `__call__` for one sequence (unknown words print as `<unk>`)."""
        ids = [int(i) for i in np.asarray(ids).reshape(-1) if int(i) not in (PAD_ID, START_ID)]
        if END_ID in ids:
            ids = ids[: ids.index(END_ID)]
        if self.vocabulary is None:
            return bytes(i - len(SPECIAL_TOKENS) for i in ids if i >= 4).decode("utf-8", "replace")
        words = [
            self.vocabulary[i - len(SPECIAL_TOKENS)] if i >= len(SPECIAL_TOKENS) else UNKNOWN
            for i in ids
        ]
        return " ".join(words)

    def unknown_words(self, texts):
        """Words of `texts` missing from the vocabulary (empty for byte level)."""
        if self.vocabulary is None:
            return []
        missing = []
        for text in check_texts(texts, "texts"):
            missing += [w for w in self.split(text) if w not in self._index and w not in missing]
        return missing

    def check_ids(self, ids, what="token ids"):
        """Checks an integer array of ids (N, L): shape, dtype and range."""
        ids = np.asarray(ids)
        if ids.dtype.kind not in "iu":
            raise TypeError(
                f"{what} must be integers (the output of the tokenizer); got dtype {ids.dtype}."
            )
        if ids.ndim != 2:
            hint = ""
            if ids.ndim == 1:
                hint = (
                    " A 1-D integer array looks like class labels: turn labels into "
                    "captions with `kerassl.captions.captions_from_labels(labels, class_names)`."
                )
            raise ValueError(
                f"{what} must have shape (N, max_length); got shape {ids.shape}.{hint}"
            )
        if ids.shape[1] > self.max_length:
            raise ValueError(
                f"{what} have length {ids.shape[1]} but the tokenizer's max_length is "
                f"{self.max_length}."
            )
        if ids.size and (ids.min() < 0 or ids.max() >= self.vocab_size):
            raise ValueError(
                f"{what} must be in [0, {self.vocab_size}) (the vocabulary size); found "
                f"values in [{ids.min()}, {ids.max()}]."
            )
        return ids.astype("int32")

    def ids(self, texts_or_ids, what="captions"):
        """Token ids for strings, or the checked ids if already tokenized."""
        array = texts_or_ids
        if not isinstance(array, np.ndarray) and not isinstance(array, (list, tuple, str, bytes)):
            array = np.asarray(keras.ops.convert_to_numpy(array))
        if isinstance(array, np.ndarray) and array.dtype.kind in "iu":
            return self.check_ids(array, what)
        if isinstance(array, np.ndarray) and array.dtype.kind == "f":
            raise TypeError(
                f"{what} have dtype {array.dtype}: pass strings, or integer token ids "
                "of shape (N, max_length)."
            )
        return self(check_texts(array, what))

    def get_config(self):
        return {
            "vocabulary": self.vocabulary,
            "max_length": self.max_length,
            "lowercase": self.lowercase,
        }

    @classmethod
    def from_config(cls, config):
        return cls(**config)

    def __repr__(self):
        kind = "byte-level" if self.vocabulary is None else f"{len(self.vocabulary)} words"
        return f"Tokenizer({kind}, max_length={self.max_length})"


def warn_unknown_words(tokenizer, texts, what):
    missing = tokenizer.unknown_words(texts)
    if missing:
        warnings.warn(
            f"{what} use words the tokenizer never saw in training: {missing[:10]}. They "
            "become <unk>, so their embeddings carry no meaning. Use words from the "
            "training captions (see tokenizer.vocabulary) or a byte-level tokenizer.",
            stacklevel=3,
        )


@register(name="TextTransformerBlock")
class TransformerBlock(keras.layers.Layer):
    """Pre-norm transformer block: x + attention(LN(x)), then x + MLP(LN(x)).

    Args:
        num_heads: int. Attention heads.
        mlp_dim: int. Hidden width of the MLP.
        dropout: float. Dropout in attention and MLP.
        activation: str. "gelu" (exact) or "quick_gelu", x * sigmoid(1.702 x) (CLIP).
        layer_norm_epsilon: float.
    """

    def __init__(
        self, num_heads, mlp_dim, dropout=0.0, activation="gelu", layer_norm_epsilon=1e-5, **kwargs
    ):
        super().__init__(**kwargs)
        if activation not in ACTIVATIONS:
            raise ValueError(f"activation must be one of {ACTIVATIONS}; got {activation!r}.")
        self.num_heads = int(num_heads)
        self.mlp_dim = int(mlp_dim)
        self.dropout = float(dropout)
        self.activation = activation
        self.layer_norm_epsilon = float(layer_norm_epsilon)

    def build(self, input_shape):
        width = input_shape[-1]
        if width % self.num_heads:
            raise ValueError(
                f"width {width} must be divisible by num_heads {self.num_heads}."
            )
        epsilon = self.layer_norm_epsilon
        self.attention_norm = keras.layers.LayerNormalization(epsilon=epsilon)
        self.attention = keras.layers.MultiHeadAttention(
            self.num_heads, width // self.num_heads, dropout=self.dropout
        )
        self.mlp_norm = keras.layers.LayerNormalization(epsilon=epsilon)
        self.mlp_in = keras.layers.Dense(
            self.mlp_dim, activation="gelu" if self.activation == "gelu" else None
        )
        self.mlp_out = keras.layers.Dense(width)
        self.mlp_dropout = keras.layers.Dropout(self.dropout)
        self.attention_norm.build(input_shape)
        self.attention.build(input_shape, input_shape)
        self.mlp_norm.build(input_shape)
        self.mlp_in.build(input_shape)
        self.mlp_out.build((*input_shape[:-1], self.mlp_dim))

    def call(self, x, attention_mask=None, training=False):
        h = self.attention_norm(x)
        x = x + self.attention(h, h, attention_mask=attention_mask, training=training)
        h = self.mlp_in(self.mlp_norm(x))
        if self.activation == "quick_gelu":
            h = h * ops.sigmoid(1.702 * h)
        return x + self.mlp_dropout(self.mlp_out(h), training=training)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.update(num_heads=self.num_heads, mlp_dim=self.mlp_dim, dropout=self.dropout)
        # Only options away from their defaults, so older configs stay as they were.
        if self.activation != "gelu":
            config["activation"] = self.activation
        if self.layer_norm_epsilon != 1e-5:
            config["layer_norm_epsilon"] = self.layer_norm_epsilon
        return config


@register
class TextEncoder(keras.Model):
    """A small transformer from token ids (B, L) to one vector per text (B, width).

    Token and learned position embeddings, `depth` pre-norm transformer blocks
    and a final layer norm, then a pooling: `"end"` takes the last non-padding
    position (the `<end>` token, as CLIP does; with the default causal mask it
    is the only position that has read the whole text), `"first"` the
    `<start>` position (BERT's [CLS]; needs `causal=False`), `"mean"` the mean
    over non-padding positions, `"argmax"` the position of the largest id (CLIP's
    end-of-text token has the largest id in OpenAI's vocabulary, and its
    padding is 0, a real token, so it runs with `pad_id=None`). Id `pad_id`
    (0) is padding and is masked out of attention.

    Any Keras model that maps int token ids (B, L) to (B, D) can replace it.

    Args:
        vocab_size: int. Number of token ids (`tokenizer.vocab_size`).
        max_length: int. Longest sequence (sizes the position embedding).
        width: int. Model width.
        depth: int. Number of transformer blocks.
        num_heads: int. Attention heads (must divide `width`).
        mlp_dim: int or None. MLP width; default 4 * width.
        dropout: float. Dropout rate.
        pooling: str. `"end"`, `"first"`, `"mean"` or `"argmax"`.
        causal: bool. Causal attention mask (CLIP's text transformer uses one).
        activation: str. `"gelu"` or `"quick_gelu"` (OpenAI's CLIP).
        layer_norm_epsilon: float.
        pad_id: int or None. The padding id, masked out of attention; None:
            no id is padding (OpenAI's CLIP, whose id 0 is "!").

    Example:
    ```python
    tokenizer = kerassl.text.Tokenizer.from_texts(captions, max_length=32)
    text_encoder = kerassl.text.TextEncoder(tokenizer.vocab_size, max_length=32)
    vectors = text_encoder(tokenizer(["a photo of a cat."]))   # (1, 256)
    ```

    Reference: Radford et al., "Learning Transferable Visual Models From
    Natural Language Supervision", ICML 2021 (https://arxiv.org/abs/2103.00020),
    section 2.4; Vaswani et al., "Attention Is All You Need", 2017.
    """

    POOLINGS = ("end", "first", "mean", "argmax")
    # New options, saved only when they differ from these, so older configs stay as they were.
    OPTION_DEFAULTS = {"activation": "gelu", "layer_norm_epsilon": 1e-5, "pad_id": PAD_ID}

    def __init__(
        self,
        vocab_size,
        max_length=32,
        width=256,
        depth=4,
        num_heads=4,
        mlp_dim=None,
        dropout=0.0,
        pooling="end",
        causal=True,
        activation="gelu",
        layer_norm_epsilon=1e-5,
        pad_id=PAD_ID,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if pooling not in self.POOLINGS:
            raise ValueError(f"pooling must be one of {self.POOLINGS}; got {pooling!r}.")
        if pooling == "first" and causal:
            raise ValueError(
                "pooling='first' with causal=True would read only the <start> token; "
                "use pooling='end' or causal=False."
            )
        for name, value in (("vocab_size", vocab_size), ("max_length", max_length),
                            ("width", width), ("depth", depth), ("num_heads", num_heads)):
            if int(value) < 1:
                raise ValueError(f"{name} must be a positive integer; got {value}.")
        if int(width) % int(num_heads):
            raise ValueError(f"width {width} must be divisible by num_heads {num_heads}.")
        self.vocab_size = int(vocab_size)
        self.max_length = int(max_length)
        self.width = int(width)
        self.depth = int(depth)
        self.num_heads = int(num_heads)
        self.mlp_dim = int(mlp_dim or 4 * self.width)
        self.dropout = float(dropout)
        self.pooling = pooling
        self.causal = bool(causal)
        self.activation = activation
        self.layer_norm_epsilon = float(layer_norm_epsilon)
        self.pad_id = None if pad_id is None else int(pad_id)
        self.token_embedding = keras.layers.Embedding(
            self.vocab_size,
            self.width,
            embeddings_initializer=keras.initializers.RandomNormal(stddev=0.02),
            name="token_embedding",
        )
        self.position_embedding = keras.layers.Embedding(
            self.max_length,
            self.width,
            embeddings_initializer=keras.initializers.RandomNormal(stddev=0.01),
            name="position_embedding",
        )
        self.blocks = [
            TransformerBlock(
                self.num_heads,
                self.mlp_dim,
                self.dropout,
                activation,
                self.layer_norm_epsilon,
                name=f"block_{i}",
            )
            for i in range(self.depth)
        ]
        self.final_norm = keras.layers.LayerNormalization(
            epsilon=self.layer_norm_epsilon, name="final_norm"
        )

    def build(self, input_shape):
        length = input_shape[-1] if input_shape[-1] is not None else self.max_length
        hidden = (input_shape[0], length, self.width)
        self.token_embedding.build(input_shape)
        self.position_embedding.build((length,))
        for block in self.blocks:
            block.build(hidden)
        self.final_norm.build(hidden)
        self.built = True

    def call(self, tokens, training=False):
        if len(tokens.shape) != 2:
            raise ValueError(
                "TextEncoder expects token ids of shape (batch, length); got "
                f"{tuple(tokens.shape)}."
            )
        if "int" not in str(tokens.dtype):
            raise TypeError(
                f"TextEncoder expects integer token ids; got dtype {tokens.dtype}. "
                "Tokenize strings first with a kerassl.text.Tokenizer."
            )
        length = tokens.shape[1]
        if length is not None and length > self.max_length:
            raise ValueError(
                f"token sequences of length {length} exceed max_length={self.max_length}."
            )
        length = length if length is not None else ops.shape(tokens)[1]
        if self.pad_id is None:
            valid = ops.ones_like(tokens, dtype="bool")
        else:
            valid = ops.not_equal(tokens, self.pad_id)
        x = self.token_embedding(tokens) + self.position_embedding(ops.arange(length))[None]
        allowed = ops.ones((length, length), "int32")
        if self.causal:
            allowed = ops.tril(allowed)
        # (batch, query, key): padding keys and, if causal, later keys are hidden.
        mask = ops.logical_and(valid[:, None, :], (allowed > 0)[None])
        for block in self.blocks:
            x = block(x, attention_mask=mask, training=training)
        x = self.final_norm(x)
        if self.pooling == "argmax":
            pick = ops.one_hot(ops.argmax(tokens, axis=1), ops.shape(x)[1], dtype=x.dtype)
            return ops.einsum("bl,bld->bd", pick, x)
        return self.pool(x, valid)

    def pool(self, x, valid):
        if self.pooling == "first":
            return x[:, 0]
        weights = ops.cast(valid, x.dtype)
        if self.pooling == "mean":
            count = ops.maximum(ops.sum(weights, axis=1, keepdims=True), 1.0)
            return ops.sum(x * weights[..., None], axis=1) / count
        # The last non-padding position: the <end> token of a right-padded sequence.
        last = ops.maximum(ops.sum(ops.cast(valid, "int32"), axis=1) - 1, 0)
        pick = ops.one_hot(last, ops.shape(x)[1], dtype=x.dtype)
        return ops.einsum("bl,bld->bd", pick, x)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.width)

    def get_config(self):
        config = super().get_config()
        config.update(
            vocab_size=self.vocab_size,
            max_length=self.max_length,
            width=self.width,
            depth=self.depth,
            num_heads=self.num_heads,
            mlp_dim=self.mlp_dim,
            dropout=self.dropout,
            pooling=self.pooling,
            causal=self.causal,
        )
        for key, default in self.OPTION_DEFAULTS.items():
            if getattr(self, key) != default:
                config[key] = getattr(self, key)
        return config
