"""One typed config path: YAML -> dataclass sections, plus ``section.key=value`` overrides.

Each component defines its own dataclass section beside its code (``DataConfig`` in ``seqlab.data.config``,
``TrainConfig`` in ``seqlab.train.trainer``, ``DecodeConfig`` in ``seqlab.decoding.config``, one config per model
architecture in ``seqlab.models``).  This module only knows how to fill dataclasses from plain dicts, strictly:

* an unknown key fails with the closest known key suggested: ``model.hiden_size: unknown key (did you mean
  'hidden_size'?)``;
* a value of the wrong type fails naming the key, the expected type and the value;
* range checks live in each section's ``__post_init__`` (they raise ``ConfigError("field: ...")``) and get the
  section prefix added here.

The resolved config (every default filled in) is what gets saved with each checkpoint and compared on ``--resume``.
"""

from __future__ import annotations

import dataclasses
import difflib
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from seqlab.errors import ConfigError


def from_dict(cls: type, data: dict[str, Any] | None, prefix: str = "") -> Any:
    """Build dataclass ``cls`` from ``data``, checking keys and types; ``prefix`` names the section in errors."""
    data = {} if data is None else data
    if not isinstance(data, dict):
        raise ConfigError(f"{prefix.rstrip('.') or 'config'}: expected a mapping, got {type(data).__name__}")
    hints = typing.get_type_hints(cls)
    known = [f.name for f in dataclasses.fields(cls) if f.init]
    for key in data:
        if key not in known:
            close = difflib.get_close_matches(str(key), known, n=1)
            hint = f" (did you mean '{close[0]}'?)" if close else f" (known keys: {', '.join(known)})"
            raise ConfigError(f"{prefix}{key}: unknown key{hint}")
    values = {key: _coerce(value, hints[key], f"{prefix}{key}") for key, value in data.items()}
    try:
        return cls(**values)
    except ConfigError as error:  # a section's own range check: add the section prefix
        raise ConfigError(f"{prefix}{error}") from None


def _coerce(value: Any, hint: Any, key: str) -> Any:
    """Check ``value`` against the type hint ``hint``; convert int -> float and dict -> dataclass."""
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        options = typing.get_args(hint)
        if value is None and type(None) in options:
            return None
        errors = []
        for option in (o for o in options if o is not type(None)):
            try:
                return _coerce(value, option, key)
            except ConfigError as error:
                errors.append(str(error))
        raise ConfigError(errors[0])
    if dataclasses.is_dataclass(hint):
        return from_dict(hint, value, f"{key}.")
    if origin is typing.Literal:
        if value not in typing.get_args(hint):
            raise ConfigError(f"{key}: must be one of {list(typing.get_args(hint))}, got {value!r}")
        return value
    if origin in (list, tuple):
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{key}: expected a list, got {value!r}")
        args = typing.get_args(hint)
        item_hint = args[0] if args else Any
        return origin(_coerce(v, item_hint, f"{key}[{i}]") for i, v in enumerate(value))
    if origin is dict or hint is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{key}: expected a mapping, got {value!r}")
        return value
    return _coerce_scalar(value, hint, key)


def _coerce_scalar(value: Any, hint: Any, key: str) -> Any:
    if hint is Any:
        return value
    if hint is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if hint is bool and not isinstance(value, bool):
        raise ConfigError(f"{key}: expected true or false, got {value!r}")
    if hint is int and isinstance(value, bool):
        raise ConfigError(f"{key}: expected an integer, got {value!r}")
    if isinstance(hint, type) and not isinstance(value, hint):
        raise ConfigError(f"{key}: expected {hint.__name__}, got {value!r}")
    return value


def to_dict(config: Any) -> Any:
    """A dataclass tree as plain dicts/lists (what YAML and checkpoints store)."""
    if dataclasses.is_dataclass(config):
        return {f.name: to_dict(getattr(config, f.name)) for f in dataclasses.fields(config)}
    if isinstance(config, (list, tuple)):
        return [to_dict(v) for v in config]
    return config


def parse_overrides(pairs: list[str]) -> dict[str, Any]:
    """``["train.lr=0.01", "model.cell=lstm"]`` -> nested dict; values parsed as YAML scalars."""
    nested: dict[str, Any] = {}
    for pair in pairs:
        if "=" not in pair:
            raise ConfigError(f"--set {pair}: expected key=value, e.g. train.lr=0.001")
        dotted, raw = pair.split("=", 1)
        node = nested
        *parents, leaf = dotted.strip().split(".")
        for part in parents:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ConfigError(f"--set {pair}: {part} is not a section")
        node[leaf] = yaml.safe_load(raw) if raw.strip() else None
    return nested


def merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """Recursive dict merge: ``override`` wins, sections merge key by key."""
    out = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge(out[key], value)
        else:
            out[key] = value
    return out


def load_yaml(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    if path.is_dir():
        raise ConfigError(f"{path}: is a directory, not a config file")
    if not path.is_file():
        raise ConfigError(f"{path}: no such config file")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f":{mark.line + 1}" if mark is not None else ""
        raise ConfigError(f"{path}{where}: invalid YAML ({getattr(error, 'problem', error)})") from None
    except UnicodeDecodeError as error:
        raise ConfigError(f"{path}: invalid utf-8 ({error.reason})") from None
    if data is None:  # an empty or comments-only file would otherwise train a default model
        raise ConfigError(f"{path}: empty config (no sections; see configs/ for recipes)")
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping of sections (data, model, train, decode)")
    return data


@dataclass
class ModelConfig:
    """``architecture`` picks the model family; ``options`` is that family's own config dataclass."""

    architecture: str = "rnn"
    options: Any = None

    def to_dict(self) -> dict[str, Any]:
        return {"architecture": self.architecture, **to_dict(self.options)}


SECTIONS = ("task", "model_dir", "data", "model", "train", "decode")


@dataclass
class RunConfig:
    """One run of any task: which task, where its model directory is, and its data, model, training and decoding
    sections.  ``task`` picks the classes of ``data`` and ``model`` (``seqlab.tasks.TASKS``); ``decode`` is None
    for the tasks that do not generate."""

    task: str = "translation"
    model_dir: str = "runs/model"
    data: Any = None
    model: ModelConfig = field(default_factory=ModelConfig)
    train: Any = None
    decode: Any = None

    def to_dict(self) -> dict[str, Any]:
        return {"task": self.task, "model_dir": self.model_dir, "data": to_dict(self.data),
                "model": self.model.to_dict(), "train": to_dict(self.train), "decode": to_dict(self.decode)}


def check_sections(raw: dict[str, Any]) -> None:
    """Unknown top-level keys fail with the closest section suggested."""
    for key in raw:
        if key not in SECTIONS:
            close = difflib.get_close_matches(str(key), SECTIONS, n=1)
            hint = f" (did you mean '{close[0]}'?)" if close else f" (sections: {', '.join(SECTIONS)})"
            raise ConfigError(f"{key}: unknown key{hint}")


def build_model_config(raw: dict[str, Any] | None, model_configs: dict[str, type], default: str) -> ModelConfig:
    """The ``model`` section: ``architecture`` (one of ``model_configs``) and that family's own keys."""
    model_raw = dict(raw or {})
    architecture = model_raw.pop("architecture", default)
    if architecture not in model_configs:
        raise ConfigError(f"model.architecture: must be one of {sorted(model_configs)}, got {architecture!r}")
    return ModelConfig(architecture, from_dict(model_configs[architecture], model_raw, "model."))


def first_difference(a: Any, b: Any, prefix: str = "") -> str | None:
    """The dotted key where two config dicts first differ, or None when equal."""
    if isinstance(a, dict) and isinstance(b, dict):
        for key in sorted(set(a) | set(b), key=str):
            found = first_difference(a.get(key), b.get(key), f"{prefix}{key}.")
            if found:
                return found
        return None
    return None if a == b else f"{prefix.rstrip('.')} ({a!r} vs {b!r})"
