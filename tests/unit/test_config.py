"""The typed config path: unknown keys, wrong types, range checks, overrides."""

from dataclasses import dataclass, field

import pytest

from seqlab.config import first_difference, from_dict, merge, parse_overrides, to_dict
from seqlab.errors import ConfigError
from seqlab.train.trainer import TrainConfig


@dataclass
class Inner:
    size: int = 4
    rate: float = 0.5
    name: str | None = None


@dataclass
class Outer:
    inner: Inner = field(default_factory=Inner)
    flag: bool = False
    items: list[int] = field(default_factory=list)


def test_from_dict_fills_defaults_and_nested_sections():
    cfg = from_dict(Outer, {"inner": {"size": 8, "rate": 1}, "items": [1, 2]})
    assert cfg.inner.size == 8 and cfg.inner.rate == 1.0 and isinstance(cfg.inner.rate, float)
    assert cfg.items == [1, 2] and cfg.flag is False


def test_unknown_key_suggests_the_closest():
    with pytest.raises(ConfigError, match=r"inner\.sise: unknown key \(did you mean 'size'\?\)"):
        from_dict(Outer, {"inner": {"sise": 3}})


@pytest.mark.parametrize("data, message", [
    ({"inner": {"size": "big"}}, r"inner\.size: expected int, got 'big'"),
    ({"flag": 1}, r"flag: expected true or false"),
    ({"inner": {"size": True}}, r"inner\.size: expected an integer"),
    ({"items": "abc"}, r"items: expected a list"),
])
def test_wrong_types_name_the_key(data, message):
    with pytest.raises(ConfigError, match=message):
        from_dict(Outer, data)


def test_section_range_checks_get_the_section_prefix():
    with pytest.raises(ConfigError, match=r"train\.lr: must be > 0"):
        from_dict(TrainConfig, {"lr": -1}, "train.")
    with pytest.raises(ConfigError, match=r"train\.optimizer: must be adam, adamw or sgd"):
        from_dict(TrainConfig, {"optimizer": "adagrad"}, "train.")


def test_early_stopping_mode_follows_the_metric():
    assert TrainConfig(early_stopping_metric="bleu").early_stopping_mode == "max"
    assert TrainConfig(early_stopping_metric="ppl").early_stopping_mode == "min"


def test_overrides_parse_yaml_scalars_and_merge():
    over = parse_overrides(["train.lr=0.01", "model.cell=lstm", "data.max_vocab_size=null", "train.progress=false"])
    assert over == {"train": {"lr": 0.01, "progress": False}, "model": {"cell": "lstm"},
                    "data": {"max_vocab_size": None}}
    merged = merge({"train": {"lr": 1.0, "seed": 3}}, over)
    assert merged["train"] == {"lr": 0.01, "seed": 3, "progress": False}
    with pytest.raises(ConfigError, match="expected key=value"):
        parse_overrides(["train.lr"])


def test_first_difference_names_the_dotted_key():
    a = to_dict(Outer())
    b = to_dict(Outer(inner=Inner(size=5)))
    assert first_difference(a, a) is None
    assert first_difference(a, b).startswith("inner.size (4 vs 5)")
