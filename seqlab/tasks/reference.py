"""The config reference, generated from the dataclasses themselves: ``python -m seqlab.tasks.reference > docs/CONFIG.md``.

Every section of every task with each key's type, default and the comment written beside it in the code; a test
fails when docs/CONFIG.md is out of date.
"""

from __future__ import annotations

import dataclasses
import inspect
import re
import typing
from typing import Any

from seqlab.decoding.config import DecodeConfig
from seqlab.tasks import TASKS
from seqlab.train.trainer import TrainConfig

_FIELD_LINE = re.compile(r"^\s+(\w+):[^#]*?(?:#\s*(.*))?$")


def field_comments(cls: type) -> dict[str, str]:
    """``name -> comment`` from the ``name: type = default  # comment`` lines of a dataclass's source."""
    comments: dict[str, str] = {}
    for line in inspect.getsource(cls).splitlines():
        match = _FIELD_LINE.match(line)
        if match and match.group(2) and match.group(1) not in comments:
            comments[match.group(1)] = match.group(2).strip()
    return comments


def type_name(hint: Any) -> str:
    text = hint.__name__ if isinstance(hint, type) else str(hint)
    text = text.replace("typing.", "").replace("NoneType", "None").replace("seqlab.data.config.", "")
    return text.replace(" | ", " or ")  # a bar would end the table cell


def default_text(field: dataclasses.Field) -> str:
    if field.default is not dataclasses.MISSING:
        return repr(field.default)
    if field.default_factory is not dataclasses.MISSING:  # type: ignore[misc]
        value = field.default_factory()  # type: ignore[misc]
        return "(section)" if dataclasses.is_dataclass(value) else repr(value)
    return "(required)"


def section_table(cls: type, prefix: str, defaults: dict[str, Any] | None = None) -> list[str]:
    """A markdown table of one dataclass section; nested dataclass sections follow as their own tables."""
    hints, comments, defaults = typing.get_type_hints(cls), field_comments(cls), defaults or {}
    rows = ["| key | type | default | meaning |", "|---|---|---|---|"]
    nested = []
    for field in dataclasses.fields(cls):
        if not field.init:
            continue
        default = repr(defaults[field.name]) + " (task default)" if field.name in defaults else default_text(field)
        meaning = comments.get(field.name, "").replace("|", "\\|")
        rows.append(f"| `{prefix}{field.name}` | {type_name(hints[field.name])} | {default} | {meaning} |")
        if dataclasses.is_dataclass(hints[field.name]):
            nested.append((hints[field.name], f"{prefix}{field.name}."))
    lines = [*rows, ""]
    for inner, inner_prefix in nested:
        lines += [f"`{inner_prefix.rstrip('.')}` ({inner.__name__}):", "", *section_table(inner, inner_prefix)]
    return lines


def task_reference(name: str, module: Any) -> list[str]:
    summary = (module.__doc__ or "").strip().splitlines()[0]
    defaults = module.DEFAULTS
    lines = [f"## task: {name}", "", summary, "", f"`model_dir` default: `{defaults.get('model_dir', 'runs/model')}`",
             "", f"### data ({module.DataConfig.__module__}.{module.DataConfig.__name__})", "",
             *section_table(module.DataConfig, "data.")]
    for architecture, config_class in module.MODEL_CONFIGS.items():
        default = " (default)" if architecture == module.DEFAULT_ARCHITECTURE else ""
        lines += [f"### model, architecture: {architecture}{default} ({config_class.__name__})", "",
                  *section_table(config_class, "model.")]
    overrides = defaults.get("train", {})
    if overrides:
        lines += ["Task defaults of the train section: " + ", ".join(f"`{k}: {v!r}`" for k, v in overrides.items()),
                  ""]
    if module.GENERATES:
        lines += ["Uses the `decode` section." + (" Task defaults: " + ", ".join(
            f"`{k}: {v!r}`" for k, v in defaults["decode"].items()) if "decode" in defaults else ""), ""]
    else:
        lines += ["Generates no text: a `decode` section is refused.", ""]
    return lines


def render() -> str:
    lines = ["# Config reference", "",
             "Generated from the code by `python -m seqlab.tasks.reference > docs/CONFIG.md`; a test fails when it "
             "is out of date.  A run config has the sections `task`, `model_dir`, `data`, `model` (with "
             "`architecture`), `train` and `decode`; `task` picks the data and model sections.  Any key can be "
             "overridden on the command line: `--set train.lr=0.0005`.", ""]
    for name, module in TASKS.items():
        lines += task_reference(name, module)
    lines += ["## train (every task; TrainConfig)", "", *section_table(TrainConfig, "train."),
              "## decode (tasks that generate; DecodeConfig)", "", *section_table(DecodeConfig, "decode.")]
    return "\n".join(lines).rstrip() + "\n"


if __name__ == "__main__":
    print(render(), end="")
