"""From a ``DataConfig`` to batches: the one entry point the trainer and the CLI use for parallel text.

    preprocessing, corpora = prepare_parallel(config.data)          # tokenizers + vocabularies fit on train only
    batches = make_batches(corpora["train"], config.data, shuffle=True)
    for batch in batches.epoch_batches(epoch): ...                  # Seq2SeqBatch, every pair once per epoch

Text is tokenized and numericalised once; with ``cache_dir`` set the int arrays are stored (``np.savez``) under a
key that hashes the data config and the source files' sizes and mtimes, so a second run skips tokenization.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from seqlab.data.batching import BatchSampler, collate_pairs
from seqlab.data.config import DataConfig
from seqlab.data.corpora import read_parallel
from seqlab.data.datasets import load_parallel, resolve_data_dir
from seqlab.data.tokenizers import Tokenizer, build_tokenizer, tokenizer_from_dict
from seqlab.data.vocab import Vocab
from seqlab.errors import ConfigError, DataError
from seqlab.contracts import Seq2SeqBatch

log = logging.getLogger(__name__)

SPLIT_FILES = {"train": ("train_src", "train_tgt"), "valid": ("valid_src", "valid_tgt"),
               "test": ("test_src", "test_tgt")}


@dataclass
class Preprocessing:
    """Text <-> ids for both sides: what a trained model needs besides its weights (stored in checkpoints)."""

    src_tokenizer: Tokenizer
    tgt_tokenizer: Tokenizer
    src_vocab: Vocab
    tgt_vocab: Vocab

    def src_ids(self, text: str) -> np.ndarray:
        """Source ids without <eos> (``collate_pairs`` adds it)."""
        return np.asarray(self.src_vocab.encode(self.src_tokenizer.encode(text)), dtype=np.int32)

    def tgt_ids(self, text: str) -> np.ndarray:
        """Target ids without <bos>/<eos>."""
        return np.asarray(self.tgt_vocab.encode(self.tgt_tokenizer.encode(text)), dtype=np.int32)

    def encode_src(self, text: str) -> np.ndarray:
        """A source sentence as the model sees it at inference: ids then <eos>, as ``collate_pairs`` builds it."""
        return np.append(self.src_ids(text), self.src_vocab.eos_id).astype(np.int32)

    def decode_tgt(self, ids: Sequence[int]) -> str:
        """Target ids -> detokenized text (specials dropped, cut at <eos>)."""
        return self.tgt_tokenizer.decode(self.tgt_vocab.decode(list(ids)))

    def text_files(self) -> dict[str, Vocab]:
        """What the model directory shows people beside the checkpoints."""
        return {"vocab.src.txt": self.src_vocab, "vocab.tgt.txt": self.tgt_vocab}

    def to_dict(self) -> dict[str, Any]:
        return {"src_tokenizer": self.src_tokenizer.to_dict(), "tgt_tokenizer": self.tgt_tokenizer.to_dict(),
                "src_vocab": self.src_vocab.to_dict(), "tgt_vocab": self.tgt_vocab.to_dict()}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Preprocessing":
        return cls(tokenizer_from_dict(data["src_tokenizer"]), tokenizer_from_dict(data["tgt_tokenizer"]),
                   Vocab.from_dict(data["src_vocab"]), Vocab.from_dict(data["tgt_vocab"]))


@dataclass
class ParallelCorpus:
    """Numericalised pairs (int32 arrays without <bos>/<eos>) and the raw text they came from."""

    src: list[np.ndarray]
    tgt: list[np.ndarray]
    raw: list[tuple[str, str]] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.src)

    @property
    def lengths(self) -> np.ndarray:
        """Cost of each pair in tokens: the longer side with its <eos> (or <bos>)."""
        return np.array([max(len(s), len(t)) + 1 for s, t in zip(self.src, self.tgt)], dtype=np.int64)

    @classmethod
    def from_pairs(cls, pairs: Sequence[tuple[str, str]], pre: Preprocessing) -> "ParallelCorpus":
        return cls([pre.src_ids(s) for s, _ in pairs], [pre.tgt_ids(t) for _, t in pairs], list(pairs))

    def filtered(self, max_src_len: int, max_tgt_len: int) -> "ParallelCorpus":
        keep = [i for i, (s, t) in enumerate(zip(self.src, self.tgt))
                if 0 < len(s) <= max_src_len and 0 < len(t) <= max_tgt_len]
        return ParallelCorpus([self.src[i] for i in keep], [self.tgt[i] for i in keep],
                              [self.raw[i] for i in keep] if self.raw else [])


class Batches:
    """A corpus cut into ``Seq2SeqBatch``es by a ``BatchSampler``; deterministic per epoch."""

    def __init__(self, corpus: ParallelCorpus, sampler: BatchSampler, bos_id: int, eos_id: int):
        self.corpus, self.sampler, self.bos_id, self.eos_id = corpus, sampler, bos_id, eos_id

    def __len__(self) -> int:
        return len(self.sampler)

    def epoch_batches(self, epoch: int) -> list[Seq2SeqBatch]:
        return [collate_pairs(self.corpus.src, self.corpus.tgt, indices, self.bos_id, self.eos_id)
                for indices in self.sampler.epoch_batches(epoch)]


def make_batches(corpus: ParallelCorpus, config: DataConfig, shuffle: bool) -> Batches:
    if len(corpus) == 0:
        raise DataError("no sentence pairs to batch (empty split, or every pair filtered by max_src_len/max_tgt_len)")
    sampler = BatchSampler(corpus.lengths, config.batch_size, config.max_tokens, config.bucket, shuffle, config.seed)
    # Specials are the same ids in every Vocab (<bos>=2, <eos>=3), so no vocabulary is needed here.
    return Batches(corpus, sampler, bos_id=2, eos_id=3)


def load_split(config: DataConfig, split: str) -> list[tuple[str, str]]:
    """Raw (source, target) pairs of ``split`` (train | valid | test), from the catalogue or from files."""
    if split not in SPLIT_FILES:
        raise ConfigError(f"split: must be one of {list(SPLIT_FILES)}, got {split!r}")
    if config.dataset != "files":
        pairs = load_parallel(config.dataset, split, config.src_lang, config.tgt_lang, config.data_dir)
        if split == "train" and config.max_train_examples:
            pairs = pairs[:config.max_train_examples]
        return pairs
    src_key, tgt_key = SPLIT_FILES[split]
    src_path, tgt_path = getattr(config, src_key), getattr(config, tgt_key)
    if not src_path or not tgt_path:
        raise ConfigError(f"data.{src_key}/data.{tgt_key}: needed for the {split} split when dataset is 'files'")
    pairs = read_parallel(src_path, tgt_path)
    return pairs[:config.max_train_examples] if split == "train" and config.max_train_examples else pairs


def fit_preprocessing(config: DataConfig, train_pairs: Sequence[tuple[str, str]]) -> Preprocessing:
    """Tokenizers (sentencepiece trained here) and vocabularies, from the training pairs only."""
    sources, targets = [s for s, _ in train_pairs], [t for _, t in train_pairs]
    if config.joint_vocab:
        tokenizer = build_tokenizer(config.tokenizer, sources + targets, seed=config.seed)
        vocab = Vocab.build([tokenizer.encode(text) for text in sources + targets], config.min_freq,
                            config.max_vocab_size)
        return Preprocessing(tokenizer, tokenizer, vocab, vocab)
    src_tokenizer = build_tokenizer(config.tokenizer, sources, seed=config.seed)
    tgt_tokenizer = build_tokenizer(config.target_tokenizer, targets, seed=config.seed)
    src_vocab = Vocab.build([src_tokenizer.encode(text) for text in sources], config.min_freq, config.max_vocab_size)
    tgt_vocab = Vocab.build([tgt_tokenizer.encode(text) for text in targets], config.min_freq, config.max_vocab_size)
    return Preprocessing(src_tokenizer, tgt_tokenizer, src_vocab, tgt_vocab)


def prepare_parallel(config: DataConfig, splits: Sequence[str] = ("train", "valid", "test")
                     ) -> tuple[Preprocessing, dict[str, ParallelCorpus]]:
    """Fit the preprocessing on the training split and numericalise ``splits``.

    Training pairs longer than ``max_src_len``/``max_tgt_len`` tokens (or with an empty side) are dropped, and
    the count logged; evaluation splits are kept whole so their scores are over the real test set.
    """
    raw = {split: load_split(config, split) for split in dict.fromkeys(("train", *splits))}
    cached = _load_cache(config)
    if cached is not None:
        pre, arrays = cached
    else:
        pre = fit_preprocessing(config, raw["train"])
        arrays = {}
    full = {split: ParallelCorpus(*arrays[split], raw[split]) if split in arrays
            else ParallelCorpus.from_pairs(raw[split], pre) for split in raw}
    if cached is None and config.cache_dir:
        _save_cache(config, pre, full)  # unfiltered, so changing max_src_len needs no new cache
    corpora = {split: full[split] for split in splits}
    if "train" in corpora:
        kept = corpora["train"].filtered(config.max_src_len, config.max_tgt_len)
        if len(kept) < len(corpora["train"]):
            log.info("train: dropped %d of %d pairs (empty or longer than %d/%d tokens)",
                     len(corpora["train"]) - len(kept), len(corpora["train"]), config.max_src_len, config.max_tgt_len)
        corpora["train"] = kept
    return pre, corpora


# ---------------------------------------------------------------------------------------------------- the cache
def _cache_path(config: DataConfig) -> Path | None:
    if not config.cache_dir:
        return None
    stamp = {"config": asdict(config), "files": _file_stamps(config)}
    key = hashlib.sha256(json.dumps(stamp, sort_keys=True, default=str).encode()).hexdigest()[:16]
    return Path(config.cache_dir) / f"parallel-{key}.npz"


def _file_stamps(config: DataConfig) -> list[tuple[str, int, int]]:
    if config.dataset == "files":
        paths = [getattr(config, name) for pair in SPLIT_FILES.values() for name in pair if getattr(config, name)]
    elif config.dataset == "tatoeba-sample":
        return []  # bundled with the package; the package version is part of nothing else, but it never changes
    else:
        root = resolve_data_dir(config.data_dir)
        paths = [str(p) for p in sorted(root.glob(f"{config.dataset.split('-')[0]}*/**/*")) if p.is_file()]
    return [(p, os.stat(p).st_size, int(os.stat(p).st_mtime)) for p in paths if os.path.exists(p)]


def _load_cache(config: DataConfig) -> tuple[Preprocessing, dict[str, tuple[list, list]]] | None:
    path = _cache_path(config)
    if path is None or not path.is_file():
        return None
    with np.load(path, allow_pickle=False) as stored:
        pre = Preprocessing.from_dict(_unjson(stored["preprocessing"]))
        arrays = {}
        for split in SPLIT_FILES:
            if f"{split}_src_flat" in stored:
                arrays[split] = (_unflatten(stored[f"{split}_src_flat"], stored[f"{split}_src_len"]),
                                 _unflatten(stored[f"{split}_tgt_flat"], stored[f"{split}_tgt_len"]))
    log.info("loaded numericalised data from %s", path)
    return pre, arrays


def _save_cache(config: DataConfig, pre: Preprocessing, corpora: dict[str, ParallelCorpus]) -> None:
    path = _cache_path(config)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {"preprocessing": np.frombuffer(_json_bytes(pre.to_dict()), dtype=np.uint8)}
    for split, corpus in corpora.items():
        for side, rows in (("src", corpus.src), ("tgt", corpus.tgt)):
            payload[f"{split}_{side}_flat"] = np.concatenate(rows) if rows else np.zeros(0, np.int32)
            payload[f"{split}_{side}_len"] = np.array([len(r) for r in rows], dtype=np.int64)
    tmp = path.with_name(path.name + ".tmp.npz")
    np.savez(tmp, **payload)
    os.replace(tmp, path)


def _json_bytes(data: dict[str, Any]) -> bytes:
    # sentencepiece model protos are bytes: hex them for JSON
    return json.dumps(data, default=lambda b: {"__bytes__": b.hex()}).encode()


def _unjson(array: np.ndarray) -> dict[str, Any]:
    def hook(obj: dict) -> Any:
        return bytes.fromhex(obj["__bytes__"]) if set(obj) == {"__bytes__"} else obj
    return json.loads(array.tobytes().decode(), object_hook=hook)


def _unflatten(flat: np.ndarray, lengths: np.ndarray) -> list[np.ndarray]:
    return np.split(flat.astype(np.int32), np.cumsum(lengths)[:-1]) if len(lengths) else []
