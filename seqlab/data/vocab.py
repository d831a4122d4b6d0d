"""``Vocab``: token strings <-> integer ids (d2l's ``Vocab``, made deterministic and serialisable).

Id layout: ``<pad>`` = 0, ``<unk>`` = 1, ``<bos>`` = 2, ``<eos>`` = 3, then the user's specials, then the corpus
tokens by descending frequency, ties broken alphabetically, so the same corpus always gives the same ids.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any, Iterable, Sequence

from seqlab.data.corpora import read_lines
from seqlab.errors import DataError
from seqlab.utils import atomic_write

PAD, UNK, BOS, EOS = "<pad>", "<unk>", "<bos>", "<eos>"
RESERVED = (PAD, UNK, BOS, EOS)
_CONTROL = frozenset((PAD, BOS, EOS))


class Vocab:
    """A fixed list of tokens; the id of a token is its position."""

    def __init__(self, tokens: Sequence[str], specials: Sequence[str] = ()):
        """``tokens`` is the whole list, starting with the four reserved tokens; ``specials`` are the user's
        specials among them (kept, not counted, by ``build``)."""
        if tuple(tokens[:len(RESERVED)]) != RESERVED:
            raise ValueError(f"a vocabulary starts with {RESERVED}, got {tuple(tokens[:len(RESERVED)])}")
        self._tokens = list(tokens)
        self.specials = tuple(specials)
        self._ids = {token: index for index, token in enumerate(self._tokens)}
        if len(self._ids) != len(self._tokens):
            duplicate = next(t for t, n in Counter(self._tokens).items() if n > 1)
            raise ValueError(f"duplicate token {duplicate!r} in vocabulary")

    @classmethod
    def build(cls, token_lists: Iterable[list[str]], min_freq: int = 1, max_size: int | None = None,
              specials: Sequence[str] = ()) -> "Vocab":
        """Count tokens; keep those seen ``min_freq`` times or more, at most ``max_size`` of them (specials and
        the reserved four not included), most frequent first, ties alphabetical."""
        counts = Counter(token for tokens in token_lists for token in tokens)
        head = list(RESERVED) + [s for s in dict.fromkeys(specials) if s not in RESERVED]
        known = set(head)
        kept = sorted((t for t, n in counts.items() if n >= min_freq and t not in known), key=lambda t: (-counts[t], t))
        if max_size is not None:
            kept = kept[:max_size]
        return cls(head + kept, head[len(RESERVED):])

    # ------------------------------------------------------------------------------------------- look-ups
    def __len__(self) -> int:
        return len(self._tokens)

    def __contains__(self, token: object) -> bool:
        return token in self._ids

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Vocab) and self._tokens == other._tokens and self.specials == other.specials

    def __repr__(self) -> str:
        return f"Vocab(size={len(self)}, first={self._tokens[len(RESERVED):len(RESERVED) + 5]})"

    @property
    def tokens(self) -> list[str]:
        return list(self._tokens)

    @property
    def pad_id(self) -> int:
        return 0

    @property
    def unk_id(self) -> int:
        return 1

    @property
    def bos_id(self) -> int:
        return 2

    @property
    def eos_id(self) -> int:
        return 3

    def token_to_id(self, token: str) -> int:
        return self._ids.get(token, 1)

    def id_to_token(self, index: int) -> str:
        return self._tokens[index]

    def encode(self, tokens: Iterable[str]) -> list[int]:
        """Token strings of *text* -> ids; unknown ones -> <unk>.  A literal "<pad>", "<bos>" or "<eos>" in the
        text also becomes <unk>: ids 0, 2 and 3 only ever come from batching and search, never from the data."""
        get = self._ids.get
        return [1 if token in _CONTROL else get(token, 1) for token in tokens]

    def decode(self, ids: Iterable[int], strip_special: bool = True) -> list[str]:
        """Ids -> tokens.  ``strip_special`` stops at the first <eos> and drops <pad> and <bos> (<unk> and the
        user's specials stay: they carry meaning, e.g. the space token of a character LM)."""
        out = []
        for index in ids:
            index = int(index)
            if strip_special:
                if index == self.eos_id:
                    break
                if index in (self.pad_id, self.bos_id):
                    continue
            out.append(self._tokens[index])
        return out

    # ------------------------------------------------------------------------------------------- storage
    def to_dict(self) -> dict[str, Any]:
        return {"tokens": list(self._tokens), "specials": list(self.specials)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Vocab":
        return cls(data["tokens"], data.get("specials", ()))

    def save(self, path: str | Path) -> None:
        """``.json``: tokens and specials.  Any other suffix: one token per line, line i+1 = id i (the user's
        specials are not marked there; they load back as ordinary tokens with the same ids)."""
        path = Path(path)
        if path.suffix == ".json":
            with atomic_write(path) as handle:
                json.dump(self.to_dict(), handle, ensure_ascii=False, indent=0)
            return
        bad = next((t for t in self._tokens if "\n" in t or "\r" in t or t == ""), None)
        if bad is not None:
            raise DataError(f"{path}: token {bad!r} cannot be written one per line; save as .json")
        with atomic_write(path) as handle:
            handle.write("".join(token + "\n" for token in self._tokens))

    @classmethod
    def load(cls, path: str | Path) -> "Vocab":
        path = Path(path)
        if not path.is_file():
            raise DataError(f"{path}: no such file")
        if path.suffix == ".json":
            return _load_json(path)
        return _load_lines(path)


def _load_json(path: Path) -> Vocab:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        raise DataError(f"{path}:{error.lineno}: invalid JSON ({error.msg})") from None
    except UnicodeDecodeError as error:
        raise DataError(f"{path}: invalid utf-8 ({error.reason})") from None
    tokens = data.get("tokens") if isinstance(data, dict) else None
    if not isinstance(tokens, list) or not all(isinstance(t, str) for t in tokens):
        raise DataError(f"{path}:1: expected an object with a 'tokens' list of strings")
    _check_tokens(tokens, path)
    return Vocab(tokens, data.get("specials", ()))


def _load_lines(path: Path) -> Vocab:
    tokens = read_lines(path)
    _check_tokens(tokens, path)
    return Vocab(tokens)


def _check_tokens(tokens: list[str], path: Path) -> None:
    """The reserved four first, no empty and no repeated token; errors name the offending line."""
    seen: dict[str, int] = {}
    for line, token in enumerate(tokens, start=1):
        if line <= len(RESERVED) and token != RESERVED[line - 1]:
            raise DataError(f"{path}:{line}: expected {RESERVED[line - 1]!r} (ids 0-3 are {', '.join(RESERVED)}), "
                            f"got {token!r}")
        if token == "":
            raise DataError(f"{path}:{line}: empty token")
        if token in seen:
            raise DataError(f"{path}:{line}: duplicate token {token!r} (first on line {seen[token]})")
        seen[token] = line
    if len(tokens) < len(RESERVED):
        raise DataError(f"{path}:{len(tokens)}: too short, a vocabulary starts with {', '.join(RESERVED)}")
