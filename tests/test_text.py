"""Tokenizer and TextEncoder: ids, errors, masking, serialization."""

import keras
import numpy as np
import pytest

from kerassl import text
from kerassl.text import END_ID, START_ID, UNKNOWN_ID, Tokenizer, TextEncoder


def test_word_vocabulary_is_built_by_frequency():
    tokenizer = Tokenizer.from_texts(["A cat.", "a dog!", "a cat"], max_length=8)
    assert tokenizer.vocabulary == ["a", "cat", ".", "dog", "!"]
    assert tokenizer.vocab_size == 4 + 5
    ids = tokenizer(["a dog.", "A CAT"])
    assert ids.dtype == np.int32 and ids.shape == (2, 8)
    np.testing.assert_array_equal(ids[0], [START_ID, 4, 7, 6, END_ID, 0, 0, 0])
    np.testing.assert_array_equal(ids[1], [START_ID, 4, 5, END_ID, 0, 0, 0, 0])
    assert tokenizer.decode(ids[0]) == "a dog ."


def test_unknown_words_and_truncation_keep_the_end_token():
    tokenizer = Tokenizer.from_texts(["a b c"], max_length=4)
    ids = tokenizer(["a zebra c b"])
    np.testing.assert_array_equal(ids[0], [START_ID, 4, UNKNOWN_ID, END_ID])
    assert tokenizer.unknown_words(["a zebra", "an ox"]) == ["zebra", "an", "ox"]
    tokenizer = Tokenizer.from_texts(["a b c b c c"], max_length=8, max_tokens=2)
    assert tokenizer.vocabulary == ["c", "b"]
    assert Tokenizer.from_texts(["a b b"], min_count=2).vocabulary == ["b"]


def test_byte_level_needs_no_vocabulary():
    tokenizer = Tokenizer(max_length=8)
    assert tokenizer.vocab_size == text.BYTE_VOCAB_SIZE == 260
    ids = tokenizer(["hé", b"ab"])
    np.testing.assert_array_equal(
        ids[0], [START_ID, ord("h") + 4, 0xC3 + 4, 0xA9 + 4, END_ID, 0, 0, 0]
    )
    assert tokenizer.decode(ids[0]) == "hé" and tokenizer.decode(ids[1]) == "ab"
    assert tokenizer.unknown_words(["anything"]) == []
    assert tokenizer(["x" * 100]).shape == (1, 8)


def test_tokenizer_config_round_trip():
    tokenizer = Tokenizer.from_texts(["one two", "three"], max_length=6, lowercase=False)
    restored = keras.saving.deserialize_keras_object(
        keras.saving.serialize_keras_object(tokenizer)
    )
    assert isinstance(restored, Tokenizer)
    assert restored.get_config() == tokenizer.get_config()
    np.testing.assert_array_equal(restored(["three One"]), tokenizer(["three One"]))


@pytest.mark.parametrize(
    "captions, error, match",
    [
        (["a cat", ""], ValueError, "caption 1 is empty"),
        (["a cat", "   "], ValueError, "caption 1 is empty"),
        (["a cat", 3], TypeError, "caption 1 is int"),
        (["a cat", None], TypeError, "caption 1 is NoneType"),
        (np.array([1.0, 2.0]), TypeError, "not strings"),
        (np.array([["a"], ["b"]]), ValueError, "1-D list of strings"),
        ([], ValueError, "empty"),
    ],
)
def test_bad_texts_get_clear_errors(captions, error, match):
    with pytest.raises(error, match=match):
        Tokenizer.from_texts(["a cat"])(captions)


@pytest.mark.parametrize(
    "ids, error, match",
    [
        (np.array([1, 2, 3]), ValueError, "captions_from_labels"),
        (np.zeros((2, 6), "float32"), TypeError, "float32"),
        (np.full((2, 6), 99), ValueError, "must be in \\[0, 6\\)"),
        (np.zeros((2, 9), "int32"), ValueError, "max_length is 6"),
    ],
)
def test_bad_token_ids_get_clear_errors(ids, error, match):
    tokenizer = Tokenizer.from_texts(["a b"], max_length=6)
    with pytest.raises(error, match=match):
        tokenizer.ids(ids)


def test_tokenizer_arguments_are_checked():
    with pytest.raises(ValueError, match="at least 3"):
        Tokenizer(max_length=2)
    with pytest.raises(ValueError, match="special tokens"):
        Tokenizer(["<pad>", "a"])


def tiny_text_encoder(**kwargs):
    kwargs = {"vocab_size": 20, "max_length": 10, "width": 16, "depth": 1, "num_heads": 2, **kwargs}
    return TextEncoder(**kwargs)


def test_text_encoder_output_and_padding_invariance():
    encoder = tiny_text_encoder()
    short = np.array([[START_ID, 5, 6, 7, END_ID, 0]], "int32")
    long = np.pad(short, ((0, 0), (0, 4)))
    out_short = keras.ops.convert_to_numpy(encoder(short))
    out_long = keras.ops.convert_to_numpy(encoder(long))
    assert out_long.shape == (1, 16)
    np.testing.assert_allclose(out_short, out_long, rtol=1e-5, atol=1e-5)
    # End pooling under a causal mask still reads the first word.
    changed = long.copy()
    changed[0, 1] = 9
    assert not np.allclose(keras.ops.convert_to_numpy(encoder(changed)), out_long, atol=1e-4)


@pytest.mark.parametrize("pooling, causal", [("mean", True), ("first", False), ("end", False)])
def test_text_encoder_poolings_ignore_padding(pooling, causal):
    encoder = tiny_text_encoder(pooling=pooling, causal=causal)
    tokens = np.array([[START_ID, 5, 6, END_ID, 0, 0], [START_ID, 8, END_ID, 0, 0, 0]], "int32")
    padded = np.pad(tokens, ((0, 0), (0, 4)))
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(encoder(tokens)),
        keras.ops.convert_to_numpy(encoder(padded)),
        rtol=1e-5,
        atol=1e-5,
    )


def test_text_encoder_arguments_and_inputs_are_checked():
    with pytest.raises(ValueError, match="pooling='first' with causal=True"):
        tiny_text_encoder(pooling="first")
    with pytest.raises(ValueError, match="divisible"):
        tiny_text_encoder(width=15)
    encoder = tiny_text_encoder()
    with pytest.raises(TypeError, match="integer token ids"):
        encoder(np.zeros((2, 6), "float32"))
    with pytest.raises(ValueError, match="exceed max_length"):
        encoder(np.zeros((2, 11), "int32"))


def test_text_encoder_saves_and_loads(tmp_path):
    encoder = tiny_text_encoder(dropout=0.1)
    tokens = Tokenizer(max_length=10)(["ab", "abc"]) % 20
    expected = keras.ops.convert_to_numpy(encoder(tokens))
    assert TextEncoder.from_config(encoder.get_config()).get_config() == encoder.get_config()
    path = tmp_path / "text.keras"
    encoder.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True)
    assert isinstance(loaded, TextEncoder)
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(loaded(tokens)), expected, rtol=1e-5, atol=1e-5
    )

