"""OpenAI CLIP's byte-level BPE tokenizer, in NumPy, saved with the model.

`CLIPTokenizer` reads a Hub repo's `vocab.json` and `merges.txt` (as
`transformers`' `CLIPTokenizer` does) and tokenizes as OpenAI's reference
(`clip/simple_tokenizer.py`): clean the text, collapse whitespace, lowercase,
split into words, byte-encode each word and merge its bytes by BPE rank, `</w>`
marking word ends; then `<|startoftext|> ... <|endoftext|>`, cut and padded to
77 ids. CLIP's text tower reads the end token's position as the argmax of the
ids (the end token has the largest id).

The cleanup does without `ftfy`, which kerassl does not depend on. It applies
the parts of `ftfy.fix_text` that are plain tables (HTML entities, control
characters, Latin ligatures, full- and half-width forms, curly quotes, NFC) and
not its mojibake repair: text whose UTF-8 was decoded as Latin-1 or cp1252
("cafÃ©") is tokenized as written, where the reference would first turn it
back into "café". `transformers`' tokenizer does less: no HTML unescaping and
none of ftfy's tables (only NFC, whitespace and lowercasing), so on texts with
HTML entities, curly quotes or ligatures it differs from the reference and
from this tokenizer.

A subclass of `kerassl.text.Tokenizer`, so `kerassl.CLIP` and
`kerassl.captions` take it wherever they take a tokenizer; it is not
re-exported from `kerassl.text` because this module imports that one.

Reference: Radford et al., "Learning Transferable Visual Models From Natural
Language Supervision", ICML 2021 (https://arxiv.org/abs/2103.00020), section
2.4; Sennrich et al., "Neural Machine Translation of Rare Words with Subword
Units", ACL 2016 (https://arxiv.org/abs/1508.07909).
"""

import html
import json
import pathlib
import unicodedata


import numpy as np

from kerassl.registry import register
from kerassl.text import Tokenizer


START_TOKEN, END_TOKEN = "<|startoftext|>", "<|endoftext|>"
SPECIAL_TOKENS = (START_TOKEN, END_TOKEN)
CONTEXT_LENGTH = 77
WORD_END = "</w>"
# The pieces OpenAI's pattern splits off before its catch-alls (letters, one digit, other runs).
CONTRACTIONS = ("'s", "'t", "'re", "'ve", "'m", "'ll", "'d")


def bytes_to_unicode():
    """OpenAI's table from the 256 byte values to printable characters (dict int -> str).

    Printable Latin-1 bytes map to themselves; the others (control
    characters, space, ...) to the characters from U+0100 on, so that every
    BPE symbol is a visible string.
    """
    printable = (
        list(range(ord("!"), ord("~") + 1))
        + list(range(ord("¡"), ord("¬") + 1))
        + list(range(ord("®"), ord("ÿ") + 1))
    )
    characters = printable[:]
    extra = 0
    for byte in range(256):
        if byte not in printable:
            printable.append(byte)
            characters.append(256 + extra)
            extra += 1
    return dict(zip(printable, (chr(c) for c in characters)))


BYTE_ENCODER = bytes_to_unicode()
BYTE_DECODER = {character: byte for byte, character in BYTE_ENCODER.items()}


def _ftfy_tables():
    # The table-driven parts of ftfy.fix_text (ftfy 6: chardata.py, fixes.py).
    table = {i: None for i in [*range(0x00, 0x09), 0x0B, *range(0x0E, 0x20), 0x7F]}
    table.update({i: None for i in [*range(0x206A, 0x2070), 0xFEFF, *range(0xFFF9, 0xFFFD)]})
    table.update({ord(c): "'" for c in "\u02bc\u2018\u2019\u201a\u201b"})
    table.update({ord(c): '"' for c in "\u201c\u201d\u201e\u201f"})
    ligatures = {"Ĳ": "IJ", "ĳ": "ij", "ŉ": "ʼn", "Ǳ": "DZ", "ǲ": "Dz", "ǳ": "dz", "Ǆ": "DŽ",
                 "ǅ": "Dž", "ǆ": "dž", "Ǉ": "LJ", "ǈ": "Lj", "ǉ": "lj", "Ǌ": "NJ", "ǋ": "Nj",
                 "ǌ": "nj", "ﬀ": "ff", "ﬁ": "fi", "ﬂ": "fl", "ﬃ": "ffi", "ﬄ": "ffl", "ﬅ": "ſt",
                 "ﬆ": "st"}
    table.update({ord(k): v for k, v in ligatures.items()})
    table[0x3000] = " "
    for code in range(0xFF01, 0xFFF0):
        normal = unicodedata.normalize("NFKC", chr(code))
        if normal != chr(code):
            table[code] = normal
    return table


_FIX_TABLE = _ftfy_tables()


def clean_text(text):
    """CLIP's text cleanup: ftfy's table fixes, HTML unescaping, whitespace, lowercase.

    Args:
        text: str.

    Returns:
        str, as OpenAI's `whitespace_clean(basic_clean(text)).lower()` has it
        for text without mojibake.

    Example:
    >>> kerassl.clip_bpe.clean_text("  A&amp;B \\u201cQuoted\\u201d\\n")
    'a&b "quoted"'
    """
    # ftfy unescapes HTML (when the text has no tags), then the reference twice more.
    text = text.translate(_FIX_TABLE)
    text = unicodedata.normalize("NFC", text)
    text = html.unescape(html.unescape(text)).strip()
    return " ".join(text.split()).lower()


def _kind(character):
    if character.isspace():
        return " "
    category = unicodedata.category(character)[0]
    return category if category in "LN" else "other"


def split_words(text):
    """Splits cleaned text as OpenAI's pattern does.

    The pattern is `<|startoftext|>|<|endoftext|>|'s|'t|'re|'ve|'m|'ll|'d|
    [\\p{L}]+|[\\p{N}]|[^\\s\\p{L}\\p{N}]+`, tried left to right at each
    position; Python's `re` has no `\\p{...}`, so this scans with Unicode
    categories instead.

    Example:
    >>> kerassl.clip_bpe.split_words("it's 42 cats!!")
    ['it', "'s", '4', '2', 'cats', '!!']
    """
    words, i, n = [], 0, len(text)
    kinds = [_kind(c) for c in text]
    while i < n:
        special = next((t for t in SPECIAL_TOKENS if text.startswith(t, i)), None)
        contraction = next((t for t in CONTRACTIONS if text.startswith(t, i)), None)
        if special or contraction:
            words.append(special or contraction)
            i += len(words[-1])
            continue
        kind = kinds[i]
        if kind == " ":
            i += 1
            continue
        j = i + 1
        if kind != "N":  # a digit stands alone; letters and other marks run on
            while j < n and kinds[j] == kind:
                j += 1
        words.append(text[i:j])
        i = j
    return words


def _bpe(word, ranks):
    """The BPE symbols of one byte-encoded word, `</w>` on the last one."""
    symbols = [*word[:-1], word[-1] + WORD_END]
    while len(symbols) > 1:
        pairs = list(zip(symbols[:-1], symbols[1:]))
        best = min(pairs, key=lambda pair: ranks.get(pair, float("inf")))
        if best not in ranks:
            break
        merged, i = [], 0
        while i < len(symbols):
            if i < len(symbols) - 1 and (symbols[i], symbols[i + 1]) == best:
                merged.append(symbols[i] + symbols[i + 1])
                i += 2
            else:
                merged.append(symbols[i])
                i += 1
        symbols = merged
    return symbols


def standard_vocabulary(merges):
    """OpenAI's vocabulary for a list of merges, in id order.

    The 256 byte symbols, the same with `</w>`, one token per merge, then
    `<|startoftext|>` and `<|endoftext|>`: the layout of OpenAI's
    `bpe_simple_vocab_16e6` and of the `vocab.json` files on the Hub.
    """
    symbols = list(BYTE_ENCODER.values())
    return symbols + [s + WORD_END for s in symbols] + ["".join(m) for m in merges] + list(
        SPECIAL_TOKENS
    )


def _read_merges(lines):
    merges = []
    for number, line in enumerate(lines, start=1):
        if (number == 1 and line.startswith("#version")) or not line.strip():
            continue
        pair = tuple(line.split())
        if len(pair) != 2:
            raise ValueError(f"merges line {number} is {line!r}: expected two symbols.")
        merges.append(pair)
    return merges


@register
class CLIPTokenizer(Tokenizer):
    """OpenAI CLIP's byte-level BPE tokenizer: strings -> int32 ids (N, 77) in NumPy.

    Every row is `<|startoftext|> tokens... <|endoftext|>` padded with 0, as
    OpenAI's `clip.tokenize` makes them; a text longer than the context keeps
    its first `max_length - 2` tokens and ends with `<|endoftext|>`. The end
    token has the largest id, so a text tower finds it as the argmax of the ids
    (`kerassl.text.TextEncoder(pooling="argmax")`). The merges (and the
    vocabulary, where it is not OpenAI's standard layout) are the config, so a
    model holding the tokenizer round-trips through a `.keras` file in safe
    mode.

    Args:
        merges: list of (str, str) pairs or "a b" strings, by rank.
        vocabulary: list of str or None. Tokens in id order; None means
            `standard_vocabulary(merges)`.
        max_length: int >= 3. Context length (77 for OpenAI's models).

    Example:
    ```python
    tokenizer = kerassl.clip_bpe.CLIPTokenizer.from_files("vocab.json", "merges.txt")
    ids = tokenizer(["a photo of a cat."])      # int32 (1, 77)
    ```

    Reference: Radford et al., ICML 2021 (https://arxiv.org/abs/2103.00020).
    """

    def __init__(self, merges, vocabulary=None, max_length=CONTEXT_LENGTH):
        super().__init__(None, max_length=max_length, lowercase=True)
        self.merges = [tuple(m.split()) if isinstance(m, str) else tuple(m) for m in merges]
        if any(len(pair) != 2 for pair in self.merges):
            raise ValueError("every merge must be a pair of symbols, e.g. 'a b' or ('a', 'b').")
        tokens = standard_vocabulary(self.merges) if vocabulary is None else list(vocabulary)
        self.vocabulary = None if vocabulary is None else tokens
        self.tokens = tokens
        self.encoder = {token: i for i, token in enumerate(tokens)}
        if len(self.encoder) != len(tokens):
            raise ValueError("the vocabulary contains duplicate tokens.")
        missing = [t for t in SPECIAL_TOKENS if t not in self.encoder]
        missing += [
            t for t in [*BYTE_ENCODER.values()] + ["".join(m) for m in self.merges]
            if t not in self.encoder and t + WORD_END not in self.encoder
        ][:5]
        if missing:
            raise ValueError(
                f"the vocabulary lacks {missing}: vocab.json and merges.txt must come from "
                "the same CLIP tokenizer."
            )
        self.ranks = {pair: rank for rank, pair in enumerate(self.merges)}
        self.start_id, self.end_id = (self.encoder[t] for t in SPECIAL_TOKENS)
        if self.end_id != len(tokens) - 1:
            raise ValueError(
                f"{END_TOKEN} has id {self.end_id}, not the largest ({len(tokens) - 1}): "
                "CLIP's text tower finds it as the argmax of the ids."
            )
        self._cache = {t: [self.encoder[t]] for t in SPECIAL_TOKENS}

    @classmethod
    def from_files(cls, vocab_path, merges_path, max_length=CONTEXT_LENGTH):
        """Reads a Hub repo's `vocab.json` and `merges.txt` (the `transformers` layout).

        Args:
            vocab_path: path to `vocab.json` (token -> id).
            merges_path: path to `merges.txt` (an optional `#version` line,
                then one "a b" merge per line, by rank).
            max_length: int. Context length.

        Example:
        >>> tok = kerassl.clip_bpe.CLIPTokenizer.from_files("vocab.json", "merges.txt")
        """
        with open(vocab_path, encoding="utf-8") as file:
            vocab = json.load(file)
        if not isinstance(vocab, dict):
            raise ValueError(f"{vocab_path} must hold a JSON object of token -> id.")
        merges = _read_merges(pathlib.Path(merges_path).read_text("utf-8").split("\n"))
        ids = sorted(vocab.values())
        if ids != list(range(len(vocab))):
            raise ValueError(f"{vocab_path}: token ids must be 0 .. {len(vocab) - 1}, each once.")
        tokens = sorted(vocab, key=vocab.get)
        vocabulary = None if tokens == standard_vocabulary(merges) else tokens
        return cls(merges, vocabulary, max_length)

    @property
    def vocab_size(self):
        """Number of ids (49408 for OpenAI's models): the text tower's input size."""
        return len(self.tokens)

    def split(self, text):
        """The words of one text after CLIP's cleanup."""
        return split_words(clean_text(text))

    def encode(self, text):
        """Ids of one text, without start, end or padding."""
        ids = []
        for word in self.split(text):
            if word not in self._cache:
                encoded = "".join(BYTE_ENCODER[b] for b in word.encode("utf-8"))
                self._cache[word] = [self.encoder[s] for s in _bpe(encoded, self.ranks)]
            ids += self._cache[word]
        return ids

    def __call__(self, texts):
        """Tokenizes strings (empty ones too) into an int32 array (N, max_length)."""
        if isinstance(texts, (str, bytes)):
            texts = [texts]
        texts = [t.decode("utf-8") if isinstance(t, bytes) else str(t) for t in texts]
        if not texts:
            raise ValueError("texts are empty: at least one string is needed.")
        ids = np.zeros((len(texts), self.max_length), "int32")
        for row, text in enumerate(texts):
            sequence = [self.start_id, *self.encode(text)[: self.max_length - 2], self.end_id]
            ids[row, : len(sequence)] = sequence
        return ids

    def decode(self, ids):
        """Text of one id sequence, up to its end token (cleaned, lowercased)."""
        ids = [int(i) for i in np.asarray(ids).reshape(-1)]
        if self.end_id in ids:
            ids = ids[: ids.index(self.end_id)]
        text = "".join(self.tokens[i] for i in ids if i != self.start_id)
        raw = bytes(32 if c == " " else BYTE_DECODER[c] for c in text.replace(WORD_END, " "))
        return " ".join(raw.decode("utf-8", "replace").split())

    def unknown_words(self, texts):
        """Always empty: byte-level BPE has no unknown words."""
        return []

    def get_config(self):
        return {
            "merges": [" ".join(pair) for pair in self.merges],
            "vocabulary": self.vocabulary,
            "max_length": self.max_length,
        }

    def __repr__(self):
        return f"CLIPTokenizer({self.vocab_size} tokens, max_length={self.max_length})"
