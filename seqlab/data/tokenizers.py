"""Tokenizers: raw text <-> a list of token strings.

Three kinds, one ``Tokenizer`` protocol:

* ``WordTokenizer``: d2l's ``preprocess_nmt`` (no-break spaces -> space, lower-case, a space before ``, . ! ?``)
  then a whitespace split.
* ``CharTokenizer``: one token per character; a space is the token ``▁`` so vocabulary files stay readable.
* ``SentencePieceTokenizer``: BPE or unigram subwords trained in-process with the sentencepiece library.

Every tokenizer serialises to plain data (``to_dict``), stored inside checkpoints that load with
``weights_only=True``; the sentencepiece model travels as its serialized proto bytes.
"""

from __future__ import annotations

import io
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from seqlab.errors import CheckpointError, DataError
from seqlab.utils import atomic_write

if TYPE_CHECKING:
    from seqlab.data.config import TokenizerConfig

SPACE_SYMBOL = "\u2581"  # "▁", sentencepiece's symbol for a space
PUNCTUATION = frozenset(",.!?")
# d2l's preprocess_nmt: a space goes before , . ! ? when the previous character is not a space (and not at the
# very start).  The look-behind reads the *original* string, so "wait..." becomes "wait . . ." as in d2l.
_SPLIT_PUNCTUATION = re.compile(r"(?<=[^ ])([,.!?])")


@runtime_checkable
class Tokenizer(Protocol):
    def encode(self, text: str) -> list[str]: ...

    def decode(self, tokens: list[str]) -> str: ...

    def to_dict(self) -> dict[str, Any]: ...


def normalize_spaces(text: str) -> str:
    """French Tatoeba writes U+202F (narrow no-break space) and U+00A0 before ``! ?``; d2l maps both to a space."""
    return text.replace("\u202f", " ").replace("\xa0", " ")


class WordTokenizer:
    """Whitespace words after d2l's ``preprocess_nmt``.

    ``decode`` joins with spaces; with ``attach_punctuation`` (the default) it also drops the space before a
    ``, . ! ?`` token ("j'ai froid ." -> "j'ai froid."), so ``encode(decode(tokens)) == tokens`` either way.
    """

    def __init__(self, lowercase: bool = True, split_punctuation: bool = True, attach_punctuation: bool = True):
        self.lowercase = lowercase
        self.split_punctuation = split_punctuation
        self.attach_punctuation = attach_punctuation

    def encode(self, text: str) -> list[str]:
        text = normalize_spaces(text)
        if self.lowercase:
            text = text.lower()
        if self.split_punctuation:
            text = _SPLIT_PUNCTUATION.sub(r" \1", text)
        return text.split()

    def decode(self, tokens: list[str]) -> str:
        if not self.attach_punctuation:
            return " ".join(tokens)
        pieces: list[str] = []
        for token in tokens:
            if pieces and token in PUNCTUATION:
                pieces[-1] += token
            else:
                pieces.append(token)
        return " ".join(pieces)

    def to_dict(self) -> dict[str, Any]:
        return {"type": "word", "lowercase": self.lowercase, "split_punctuation": self.split_punctuation,
                "attach_punctuation": self.attach_punctuation}


class CharTokenizer:
    """One token per character; a space becomes ``▁`` (a vocabulary line holding only a space is easy to lose)."""

    def __init__(self, lowercase: bool = False):
        self.lowercase = lowercase

    def encode(self, text: str) -> list[str]:
        text = normalize_spaces(text)
        if self.lowercase:
            text = text.lower()
        return [SPACE_SYMBOL if char == " " else char for char in text]

    def decode(self, tokens: list[str]) -> str:
        return "".join(tokens).replace(SPACE_SYMBOL, " ")

    def to_dict(self) -> dict[str, Any]:
        return {"type": "char", "lowercase": self.lowercase}


class SentencePieceTokenizer:
    """Subword pieces from a sentencepiece model held as serialized proto bytes (so it fits in a checkpoint)."""

    def __init__(self, model_proto: bytes, lowercase: bool = False):
        import sentencepiece  # here, not at the top: word- and char-level runs never load it

        self.model_proto = bytes(model_proto)
        self.lowercase = lowercase
        try:
            self.processor = sentencepiece.SentencePieceProcessor(model_proto=self.model_proto)
        except RuntimeError as error:
            raise CheckpointError(f"sentencepiece model: cannot load ({str(error).splitlines()[0]})") from None

    @classmethod
    def train(cls, texts: list[str], vocab_size: int, model_type: str = "bpe", character_coverage: float = 1.0,
              seed: int = 1, lowercase: bool = False) -> "SentencePieceTokenizer":
        """Train in memory on ``texts``.  Deterministic for given inputs (one thread, fixed seed).

        ``vocab_size`` is a soft limit (``hard_vocab_limit=False``): a corpus too small for it gets fewer pieces
        instead of sentencepiece's "Vocabulary size too high" error.  bos/eos/pad are left to ``Vocab``; the
        model keeps only its ``<unk>`` piece.
        """
        import sentencepiece  # as in __init__: only subword runs load it

        texts = [text.lower() for text in texts] if lowercase else list(texts)
        if not any(text.strip() for text in texts):
            raise DataError("sentencepiece: no training text (the training split is empty)")
        sentencepiece.set_random_generator_seed(seed)
        model = io.BytesIO()
        try:
            sentencepiece.SentencePieceTrainer.train(
                sentence_iterator=iter(texts), model_writer=model, vocab_size=vocab_size, model_type=model_type,
                character_coverage=character_coverage, hard_vocab_limit=False, unk_id=0, bos_id=-1, eos_id=-1,
                pad_id=-1, num_threads=1, minloglevel=2)
        except RuntimeError as error:
            raise DataError(f"sentencepiece training failed: {str(error).splitlines()[0]}") from None
        return cls(model.getvalue(), lowercase)

    def encode(self, text: str) -> list[str]:
        return self.processor.encode(text.lower() if self.lowercase else text, out_type=str)

    def decode(self, tokens: list[str]) -> str:
        return self.processor.decode_pieces(list(tokens))

    def save_model(self, path: str | Path) -> None:
        """Write the ``.model`` file that ``spm_encode --model`` and ``SentencePieceProcessor(model_file=)`` read."""
        with atomic_write(path, "wb") as handle:
            handle.write(self.model_proto)

    def to_dict(self) -> dict[str, Any]:
        return {"type": "sentencepiece", "model_proto": self.model_proto, "lowercase": self.lowercase}


def tokenizer_from_dict(data: dict[str, Any]) -> Tokenizer:
    """Inverse of every ``to_dict`` above."""
    kind = data.get("type")
    if kind == "word":
        return WordTokenizer(data["lowercase"], data["split_punctuation"], data.get("attach_punctuation", True))
    if kind == "char":
        return CharTokenizer(data["lowercase"])
    if kind == "sentencepiece":
        return SentencePieceTokenizer(data["model_proto"], data["lowercase"])
    raise CheckpointError(f"tokenizer: unknown type {kind!r} (expected word, char or sentencepiece)")


def build_tokenizer(config: "TokenizerConfig", train_texts: list[str], seed: int = 1) -> Tokenizer:
    """The tokenizer ``config`` describes; sentencepiece is trained on ``train_texts`` (others ignore them)."""
    if config.type == "word":
        return WordTokenizer(lowercase=config.lowercase)
    if config.type == "char":
        return CharTokenizer(lowercase=config.lowercase)
    return SentencePieceTokenizer.train(train_texts, config.vocab_size, config.model_type,
                                        config.character_coverage, seed=seed, lowercase=config.lowercase)
