"""Every command the README quotes parses: ``seqlab ...`` lines against the CLI's parser, ``benchmarks/X.py ...``
lines against the script's own parser (run up to its ``parse_args`` and stopped there, so nothing trains).

A synopsis (``seqlab translate MODEL_DIR [-i FILE] [--beam 5]``) is parsed with its optional parts included and the
first of each ``a|b`` choice; placeholders stand for values of the right kind.  A README command that would fail
on its arguments (a missing required option, a misspelt flag) fails here.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import re
import runpy
import shlex
import sys
from pathlib import Path

import pytest

from seqlab.cli import COMMANDS, build_parser

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
# placeholders of numeric options in synopses, e.g. `--nproc N`, `--top-k K`, `--temperature T`
NUMERIC_PLACEHOLDERS = {"N": "2", "K": "4", "T": "0.7", "P": "0.9"}


def quoted_commands(text: str) -> list[str]:
    """Commands in code spans and fenced blocks, continuation lines (``... --config X``) completed with the script
    of the command before them."""
    blocks = re.findall(r"```[a-z]*\n(.*?)```", text, flags=re.S)
    prose = re.sub(r"```[a-z]*\n.*?```", "", text, flags=re.S)
    candidates = [line.split("#")[0].strip() for block in blocks for line in block.splitlines()]
    candidates += re.findall(r"`([^`\n]+)`", prose)
    commands, last_script = [], None
    for candidate in candidates:
        candidate = candidate.replace("\\|", "|")
        script = re.match(r"(?:python3? )?(benchmarks/\w+\.py)\b", candidate)
        if script:
            last_script = script.group(1)
        elif candidate.startswith("... --") and last_script:
            candidate = f"{last_script} {candidate[4:]}"
        elif not re.match(r"(seqlab|python3? -m seqlab|torchrun .*-m seqlab) \w", candidate):
            continue
        commands.append(candidate)
    return commands


def normalise(command: str) -> list[str]:
    """A synopsis as one concrete argument list: brackets and ellipses dropped, first choice of a|b, stdin
    redirection removed, numeric placeholders filled."""
    command = command.split(" < ")[0].replace('"..."', '"some text"')
    command = re.sub(r" \| [^\]]*\]", "]", command)  # [--split test | --src F --ref F]: the first choice
    command = command.replace("[", " ").replace("]", " ")
    words = []
    for word in shlex.split(command):
        if word in ("...", "…"):
            continue
        word = word.split("|")[0] if "|" in word and not word.startswith("|") else word
        if word:
            words.append(NUMERIC_PLACEHOLDERS.get(word, word))
    while len(words) > 1 and (re.fullmatch(r"[A-Z_]+=\S*", words[0]) or words[0] in ("python", "python3")) \
            and not (words[0] in ("python", "python3") and words[1] == "-m"):
        words = words[1:]  # PYTHONPATH=. OMP_NUM_THREADS=1 python3 benchmarks/x.py ...: the script and its arguments
    return words


def seqlab_arguments(words: list[str]) -> list[str] | None:
    """The arguments after ``seqlab`` / ``python -m seqlab`` / ``torchrun ... -m seqlab``; None when ``words``
    only names a command in prose (``seqlab train`` with nothing after it)."""
    if words[0] == "seqlab":
        rest = words[1:]
    else:
        rest = words[words.index("seqlab") + 1:]
    if len(rest) == 1 and rest[0] in COMMANDS and rest[0] != "quickstart":
        return None
    return rest


class Parsed(Exception):
    """Raised in place of running a benchmark once its arguments parsed."""


def parse_benchmark(script: str, arguments: list[str]) -> argparse.Namespace:
    original = argparse.ArgumentParser.parse_args

    def parse_then_stop(parser, args=None, namespace=None):
        raise Parsed(original(parser, args, namespace))

    argv, path = sys.argv, list(sys.path)
    sys.argv = [script, *arguments]
    sys.path.insert(0, str(ROOT / "benchmarks"))  # as `python benchmarks/X.py` puts its folder first
    argparse.ArgumentParser.parse_args = parse_then_stop
    try:
        runpy.run_path(str(ROOT / script), run_name="__main__")
    except Parsed as parsed:
        return parsed.args[0]
    finally:
        argparse.ArgumentParser.parse_args = original
        sys.argv, sys.path[:] = argv, path
    raise AssertionError(f"{script} never parsed its arguments")


COMMAND_LINES = quoted_commands(README.read_text(encoding="utf-8"))


def test_the_readme_quotes_commands_of_both_kinds():
    assert any(c.startswith("seqlab quickstart") for c in COMMAND_LINES)
    assert sum(c.startswith("benchmarks/") for c in COMMAND_LINES) >= 10


@pytest.mark.parametrize("command", COMMAND_LINES)
def test_every_readme_command_parses(command):
    words = normalise(command)
    stderr = io.StringIO()
    with contextlib.redirect_stderr(stderr):
        try:
            if words[0].startswith("benchmarks/"):
                parse_benchmark(words[0], words[1:])
                return
            arguments = seqlab_arguments(words)
            if arguments is not None:
                build_parser(arguments[0]).parse_args(arguments)
        except SystemExit as error:
            pytest.fail(f"README command does not parse: {command!r}: {stderr.getvalue().strip()} ({error})")


def test_a_command_missing_a_required_option_is_caught():
    """The check itself: run_seq2seq without --config, and a misspelt seqlab flag, fail to parse."""
    with contextlib.redirect_stderr(io.StringIO()), pytest.raises(SystemExit):
        parse_benchmark("benchmarks/run_seq2seq.py", ["--name", "x"])
    with contextlib.redirect_stderr(io.StringIO()), pytest.raises(SystemExit):
        build_parser("translate").parse_args(["translate", "M", "--beem", "5"])
