"""OpenAI CLIP's BPE tokenizer against transformers' CLIPTokenizer and OpenAI's reference.

The reference ids come from tests/fixtures/make_clip_fixtures.py (transformers
5.25 and open_clip's copy of OpenAI's tokenizer, with ftfy); no torch here.
"""

import gzip
import json
import pathlib

import keras
import numpy as np
import pytest

from kerassl.clip_bpe import CLIPTokenizer, clean_text, split_words, standard_vocabulary
from kerassl.text import Tokenizer

DATA = pathlib.Path(__file__).parent / "data" / "official_clip"
# Where transformers' tokenizer skips the reference's cleanup (no HTML unescaping, none
# of ftfy's tables), we follow the reference.
TRANSFORMERS_SKIPS_CLEANUP = ("HTML:", "curly", "ligatures", "fullwidth")


@pytest.fixture(scope="module")
def bpe_files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("clip_bpe")
    for name in ("vocab.json", "merges.txt"):
        (folder / name).write_bytes(gzip.decompress((DATA / "bpe" / f"{name}.gz").read_bytes()))
    return folder / "vocab.json", folder / "merges.txt"


@pytest.fixture(scope="module")
def tokenizer(bpe_files):
    return CLIPTokenizer.from_files(*bpe_files)


@pytest.fixture(scope="module")
def corpus():
    return json.loads((DATA / "tokenizer_ids.json").read_text("utf-8"))


def same_ids(ours, expected):
    """Our padded row holds `expected` then zeros."""
    return ours[: len(expected)].tolist() == expected and not ours[len(expected):].any()


def test_full_vocabulary_reads_as_openai_layout(tokenizer, bpe_files):
    assert tokenizer.vocab_size == 49408
    assert (tokenizer.start_id, tokenizer.end_id) == (49406, 49407)
    assert tokenizer.vocabulary is None  # the standard layout: only the merges are stored
    vocab = json.loads(bpe_files[0].read_text("utf-8"))
    assert standard_vocabulary(tokenizer.merges) == sorted(vocab, key=vocab.get)


def test_ids_match_transformers_and_openai(tokenizer, corpus):
    ids = tokenizer([row["text"] for row in corpus])
    assert ids.shape == (len(corpus), 77) and ids.dtype == np.int32
    matched_transformers = 0
    for row, ours in zip(corpus, ids):
        assert same_ids(ours, row["openai"]), row["text"]
        if row["text"].startswith(TRANSFORMERS_SKIPS_CLEANUP):
            assert row["transformers"] != row["openai"]
        else:
            assert same_ids(ours, row["transformers"]), row["text"]
            matched_transformers += 1
    assert matched_transformers >= 15


def test_truncation_empty_strings_and_padding(tokenizer, corpus):
    long_rows = [row for row in corpus if len(row["transformers"]) == 77]
    assert len(long_rows) >= 2  # the corpus does reach the context length
    ids = tokenizer([row["text"] for row in long_rows])
    assert np.all(ids[:, -1] == 49407) and np.all(ids[:, 0] == 49406)
    empty = tokenizer(["", "   "])
    assert empty[:, :2].tolist() == [[49406, 49407]] * 2
    assert not empty[:, 2:].any()  # padded with 0, as OpenAI's clip.tokenize


def test_cleanup_and_split_follow_the_reference():
    assert clean_text(" Tom &amp;amp; Jerry\u2019s \ufb01sh\t\uff21 ") == "tom & jerry's fish a"
    assert split_words("it's 42 cats!!'s <|endoftext|>x") == [
        "it", "'s", "4", "2", "cats", "!!'", "s", "<|endoftext|>", "x",
    ]


def test_decode_inverts_encoding(tokenizer):
    ids = tokenizer(["A photo of a Café, 2 dogs!"])[0]
    assert tokenizer.decode(ids) == "a photo of a café , 2 dogs !"


def test_config_round_trip_in_safe_mode(tokenizer, tmp_path):
    assert isinstance(tokenizer, Tokenizer)  # kerassl.CLIP and captions take it
    restored = keras.saving.deserialize_keras_object(
        keras.saving.serialize_keras_object(tokenizer), safe_mode=True
    )
    assert isinstance(restored, CLIPTokenizer) and restored.vocabulary is None
    texts = ["a photo of a cat.", "émoji 🐱 &amp; more"]
    np.testing.assert_array_equal(restored(texts), tokenizer(texts))


def test_small_vocabulary_with_its_own_layout(tmp_path):
    merges = [("c", "a"), ("ca", "t</w>")]
    vocab = standard_vocabulary(merges)
    custom = vocab[:-2][::-1] + vocab[-2:]  # not the standard order: stored in the config
    (tmp_path / "vocab.json").write_text(json.dumps({t: i for i, t in enumerate(custom)}))
    (tmp_path / "merges.txt").write_text("#version: 0.2\nc a\nca t</w>\n")
    tok = CLIPTokenizer.from_files(tmp_path / "vocab.json", tmp_path / "merges.txt", max_length=8)
    assert tok.vocabulary == custom
    assert tok(["cat"])[0, :3].tolist() == [tok.start_id, custom.index("cat</w>"), tok.end_id]


def test_bad_files_are_refused(tmp_path):
    (tmp_path / "vocab.json").write_text(json.dumps({"a": 0, "b": 2}))
    (tmp_path / "merges.txt").write_text("#version: 0.2\n")
    with pytest.raises(ValueError, match="token ids must be"):
        CLIPTokenizer.from_files(tmp_path / "vocab.json", tmp_path / "merges.txt")
    (tmp_path / "merges.txt").write_text("#version: 0.2\na b c\n")
    with pytest.raises(ValueError, match="line 2"):
        CLIPTokenizer.from_files(tmp_path / "vocab.json", tmp_path / "merges.txt")
    with pytest.raises(ValueError, match="lacks"):
        CLIPTokenizer([("a", "b")], vocabulary=["a", "b"])
