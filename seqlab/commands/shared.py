"""What the commands share that is not a command: reading input lines, writing outputs atomically, and the
decode section with the command line's choices on top.  Only argument handling and I/O: the work is done by
``seqlab.tasks``."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any, Iterator, Sequence

from seqlab.utils import atomic_write


def add_search_arguments(parser: argparse.ArgumentParser, nbest: bool = True) -> None:
    """The search flags that ``decode_config_from_args`` reads; absent ones keep the model's decode section."""
    parser.add_argument("--beam", type=int, help="beam size (>1 switches to beam search, 1 to greedy)")
    parser.add_argument("--alpha", type=float, help="length normalisation exponent (score = log p / L^alpha)")
    if nbest:
        parser.add_argument("--nbest", type=int, help="print the N best hypotheses, tab-separated with scores")
    parser.add_argument("--max-len", type=int, help="maximum output length in tokens")
    parser.add_argument("--sample", action="store_true", help="sample instead of searching")
    parser.add_argument("--temperature", type=float)
    parser.add_argument("--top-k", type=int)
    parser.add_argument("--top-p", type=float)
    parser.add_argument("--seed", type=int)


def add_quantize_argument(parser: argparse.ArgumentParser) -> None:
    """``--quantize int8`` (checked by ``load_model_dir``, so a bad value is a one-line error, not argparse's
    usage block)."""
    parser.add_argument("--quantize", metavar="int8",
                        help="int8: linear layers' weights in int8 (per-row scales), activations quantised "
                             "per call; CPU only, faster decoding, outputs within a little of fp32")


def add_ensemble_arguments(parser: argparse.ArgumentParser) -> None:
    """``--models DIR ... --ensemble mean|vote``: more members beside MODEL_DIR (seqlab.ensemble)."""
    parser.add_argument("--models", nargs="+", metavar="DIR",
                        help="more model dirs of the same vocabulary and labels: decode or predict as an ensemble "
                             "(put it after the other arguments, or end it with --)")
    parser.add_argument("--ensemble", choices=["mean", "vote"], default="mean",
                        help="mean: average the members' probabilities; vote: the answer most members give")


def load_members_from_args(args: argparse.Namespace, task: str | None = None) -> list:
    """The members named by MODEL_DIR and ``--models`` (``seqlab.ensemble.load_members``), with the command's
    checkpoint, device, dtype and quantisation choices."""
    from seqlab.ensemble import load_members
    from seqlab.errors import SeqlabError

    dirs = ([args.model_dir] if args.model_dir else []) + (getattr(args, "models", None) or [])
    if not dirs:
        raise SeqlabError("give a MODEL_DIR or --models DIR [DIR ...]")
    return load_members(dirs, args.checkpoint, getattr(args, "device", "cpu"), getattr(args, "dtype", None),
                        task, getattr(args, "quantize", None))


def decode_config_from_args(base, args: argparse.Namespace):
    """The model's saved decode config with the command-line choices on top."""
    from seqlab.config import from_dict, to_dict
    from seqlab.decoding.config import DecodeConfig

    values = to_dict(base)
    if getattr(args, "beam", None) is not None:
        values.update(beam_size=args.beam, strategy="beam" if args.beam > 1 else "greedy")
    if getattr(args, "sample", False):
        values["strategy"] = "sample"
    for option in ("alpha", "nbest", "max_len", "temperature", "top_k", "top_p", "seed"):
        if getattr(args, option, None) is not None:
            values[option] = getattr(args, option)
    if values.get("nbest", 1) > 1 and values["strategy"] != "beam":
        values["strategy"] = "beam"
    return from_dict(DecodeConfig, values, "decode.")


def read_input_lines(source: str | None) -> list[str]:
    """The lines of ``source`` (a file, or ``-`` / None for stdin), without line ends."""
    from seqlab.data.corpora import read_input_lines as read_checked

    return read_checked(source)


def use_interactive(source: str | None) -> bool:
    """True when the input is a person at a terminal: no ``-i`` file and stdin is a TTY."""
    return source in (None, "-") and sys.stdin.isatty()


def interactive_lines(prompt: str) -> Iterator[str]:
    """Lines as they are typed (the prompt on stderr, so stdout stays the answers), each checked for UTF-8 like a
    file's line; blank lines are skipped; ends at Ctrl-D or Ctrl-C."""
    from seqlab.data.corpora import decode_stdin_line

    stream = getattr(sys.stdin, "buffer", sys.stdin)
    number = 0
    while True:
        sys.stderr.write(prompt)
        sys.stderr.flush()
        try:
            raw = stream.readline()
        except KeyboardInterrupt:
            raw = b""
        if not raw:
            sys.stderr.write("\n")
            return
        number += 1
        line = decode_stdin_line(raw if isinstance(raw, bytes) else raw.encode("utf-8"), number)
        if line.strip():
            yield line


def write_output_lines(lines: Sequence[str], output: str | None) -> None:
    text = "".join(line + "\n" for line in lines)
    if output:
        with atomic_write(output) as handle:
            handle.write(text)
    else:
        sys.stdout.write(text)


def print_json(record: dict[str, Any], output: str | None = None) -> None:
    text = json.dumps(record, indent=2)
    if output:
        with atomic_write(output) as handle:
            handle.write(text + "\n")
    print(text)


def write_captions(path: str | None, names: list[str], captions: list[list[str]]) -> None:
    text = "".join(f"{name}\t{' '.join(words)}\n" for name, words in zip(names, captions))
    if path is None:
        sys.stdout.write(text)
        return
    with atomic_write(path) as handle:
        handle.write(text)
