"""The ``data`` section of a translation config: which corpus, how to tokenize it, how to batch it.

Range checks live in ``__post_init__`` and raise ``ConfigError("field: ...")``; ``seqlab.config.from_dict`` adds
the section prefix (``data.batch_size: must be > 0, got 0``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from seqlab.errors import ConfigError

TOKENIZER_TYPES = ("word", "char", "sentencepiece")
SENTENCEPIECE_MODELS = ("bpe", "unigram")
# Parallel corpora ``load_parallel`` knows, with their languages (kept here so a typo fails before any file is read).
PARALLEL_LANGUAGES: dict[str, tuple[str, ...]] = {
    "multi30k": ("en", "de", "fr"),
    "tatoeba-fra-eng": ("en", "fr"),
    "tatoeba-sample": ("en", "fr"),
}


@dataclass
class TokenizerConfig:
    """How raw text becomes tokens.  ``vocab_size``, ``model_type`` and ``character_coverage`` only matter for
    ``sentencepiece`` (``vocab_size`` is a soft limit there: a tiny corpus gets fewer pieces)."""

    type: str = "word"  # word | char | sentencepiece
    lowercase: bool = True
    vocab_size: int = 8000
    model_type: str = "bpe"  # bpe | unigram
    character_coverage: float = 1.0

    def __post_init__(self) -> None:
        if self.type not in TOKENIZER_TYPES:
            raise ConfigError(f"type: must be one of {list(TOKENIZER_TYPES)}, got {self.type!r}")
        if self.model_type not in SENTENCEPIECE_MODELS:
            raise ConfigError(f"model_type: must be one of {list(SENTENCEPIECE_MODELS)}, got {self.model_type!r}")
        if self.vocab_size <= 0:
            raise ConfigError(f"vocab_size: must be > 0, got {self.vocab_size}")
        if not 0.0 < self.character_coverage <= 1.0:
            raise ConfigError(f"character_coverage: must be in (0, 1], got {self.character_coverage}")


@dataclass
class DataConfig:
    """A parallel corpus (a catalogue name, or ``files``), its tokenizers and vocabularies, and its batching.

    ``max_src_len`` / ``max_tgt_len`` count tokens without <bos>/<eos> and filter the *training* pairs only:
    evaluation always sees every pair.  ``max_tokens > 0`` switches to token-budget batches, where a batch's cost
    is its size times the longest sequence of either side (padding included).
    """

    dataset: str = "tatoeba-sample"  # a PARALLEL_LANGUAGES name, or "files"
    src_lang: str = "en"
    tgt_lang: str = "fr"
    data_dir: str | None = None
    train_src: str | None = None  # the *_src / *_tgt paths are read when dataset == "files"
    train_tgt: str | None = None
    valid_src: str | None = None
    valid_tgt: str | None = None
    test_src: str | None = None
    test_tgt: str | None = None
    tokenizer: TokenizerConfig = field(default_factory=TokenizerConfig)
    tgt_tokenizer: TokenizerConfig | None = None  # None: the same settings as ``tokenizer``
    joint_vocab: bool = False  # one vocabulary (and one sentencepiece model) for both sides
    min_freq: int = 1
    max_vocab_size: int | None = None
    max_src_len: int = 100
    max_tgt_len: int = 100
    max_train_examples: int | None = None
    batch_size: int = 64
    max_tokens: int = 0
    bucket: bool = True
    shuffle: bool = True
    seed: int = 1
    cache_dir: str | None = None

    def __post_init__(self) -> None:
        self._check_dataset()
        for name in ("min_freq", "max_src_len", "max_tgt_len", "batch_size"):
            if getattr(self, name) <= 0:
                raise ConfigError(f"{name}: must be > 0, got {getattr(self, name)}")
        for name in ("max_vocab_size", "max_train_examples"):
            value = getattr(self, name)
            if value is not None and value <= 0:
                raise ConfigError(f"{name}: must be > 0 or null, got {value}")
        if self.max_tokens < 0:
            raise ConfigError(f"max_tokens: must be >= 0 (0 = batches of batch_size sentences), got {self.max_tokens}")
        if self.joint_vocab and self.tgt_tokenizer not in (None, self.tokenizer):
            raise ConfigError("tgt_tokenizer: must be null (or equal tokenizer) when joint_vocab is true")

    def _check_dataset(self) -> None:
        if self.dataset == "files":
            for name in ("train_src", "train_tgt"):
                if not getattr(self, name):
                    raise ConfigError(f"{name}: required when dataset is 'files'")
            return
        if self.dataset not in PARALLEL_LANGUAGES:
            choices = [*PARALLEL_LANGUAGES, "files"]
            raise ConfigError(f"dataset: must be one of {choices}, got {self.dataset!r}")
        languages = PARALLEL_LANGUAGES[self.dataset]
        for name in ("src_lang", "tgt_lang"):
            if getattr(self, name) not in languages:
                raise ConfigError(f"{name}: {self.dataset} has {list(languages)}, got {getattr(self, name)!r}")
        if self.src_lang == self.tgt_lang:
            raise ConfigError(f"tgt_lang: must differ from src_lang ({self.src_lang!r})")

    @property
    def target_tokenizer(self) -> TokenizerConfig:
        """The target side's tokenizer settings (``tgt_tokenizer`` or, when unset, ``tokenizer``)."""
        return self.tgt_tokenizer or self.tokenizer
