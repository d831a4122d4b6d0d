"""Shared test helpers and tiny data sets: the one-line-error check every CLI test makes, and data directories
in the real layouts (a miniature Flickr8k) built in seconds.
"""

from __future__ import annotations

import argparse
import gzip
import io
import sys
import tarfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from seqlab.data.images import SPLIT_FILES
from seqlab.errors import SeqlabError

COLOURS = {"red": (220, 30, 30), "blue": (30, 30, 220)}
CAPTIONS = {"red": ["a red square .", "a red box ."], "blue": ["a blue sky .", "the blue sky ."]}
SPLITS = {"train": 6, "dev": 2, "test": 2}  # images per colour


def invoke(module, argv: list[str], capsys) -> tuple[int, str, str]:
    """Parse and run like ``seqlab.cli.main``: SeqlabError -> 'seqlab: error: ...' and exit code 2."""
    parser = argparse.ArgumentParser(prog="seqlab")
    module.add_arguments(parser)
    try:
        code = module.run(parser.parse_args(argv)) or 0
    except SeqlabError as error:
        print(f"seqlab: error: {error}", file=sys.stderr)
        code = 2
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def check_one_line_error(code: int, err: str, *fragments: str) -> None:
    """A user error: exit code 2 and one line on stderr, ``seqlab: error: ...`` naming every fragment."""
    lines = err.strip().splitlines()
    assert code == 2, err
    assert len(lines) == 1 and lines[0].startswith("seqlab: error: "), err
    assert "Traceback" not in err
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])


def jpeg_bytes(colour: str, seed: int) -> bytes:
    rng = np.random.default_rng(seed)
    pixels = np.clip(np.array(COLOURS[colour]) + rng.integers(-25, 25, (16, 16, 3)), 0, 255).astype(np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="JPEG", quality=95)
    return buffer.getvalue()


def write_gz(path: Path, lines: list[str]) -> None:
    with gzip.open(path, "wt", encoding="utf-8") as handle:
        handle.write("".join(line + "\n" for line in lines))


@pytest.fixture(scope="session")
def flickr(tmp_path_factory) -> Path:
    """A data directory holding flickr8k/ in the real layout, with 20 tiny images."""
    root = tmp_path_factory.mktemp("data")
    folder = root / "flickr8k"
    folder.mkdir()
    token_lines, seed = [], 0
    with tarfile.open(folder / "images-000.tar", "w") as shard:
        for split, count in SPLITS.items():
            names = []
            for colour in COLOURS:
                for _ in range(count):
                    name, seed = f"{colour}_{seed}.jpg", seed + 1
                    data = jpeg_bytes(colour, seed)
                    info = tarfile.TarInfo(name)
                    info.size = len(data)
                    shard.addfile(info, io.BytesIO(data))
                    token_lines += [f"{name}#{k}\t{text}" for k, text in enumerate(CAPTIONS[colour])]
                    names.append(name)
            write_gz(folder / SPLIT_FILES[split], names)
    write_gz(folder / "Flickr8k.token.txt.gz", token_lines)
    (root / "red.jpg").write_bytes(jpeg_bytes("red", 1000))
    (root / "blue.jpg").write_bytes(jpeg_bytes("blue", 1001))
    return root


# ------------------------------------------------------------------------------------------------ a tiny Transformer
def tiny_transformer_config(root: Path, lines: int = 1500) -> dict:
    """A Marian-shaped Transformer (post-LN, sinusoidal, one joint sentencepiece vocabulary, tied embeddings) on
    the first ``lines`` pairs of the bundled Tatoeba sample: what int8 and export tests decode."""
    sample = Path(__file__).resolve().parents[1] / "seqlab" / "resources" / "tatoeba_fra_eng_sample.tsv"
    pairs = [line.split("\t") for line in sample.read_text(encoding="utf-8").splitlines()[:lines]]
    for side, index in (("en", 0), ("fr", 1)):
        (root / f"train.{side}").write_text("".join(p[index] + "\n" for p in pairs), encoding="utf-8")
        (root / f"valid.{side}").write_text("".join(p[index] + "\n" for p in pairs[::25]), encoding="utf-8")
    files = {f"{split}_{role}": str(root / f"{name}.{side}") for split, name in
             (("train", "train"), ("valid", "valid"), ("test", "valid")) for role, side in (("src", "en"), ("tgt", "fr"))}
    return {"task": "translation", "model_dir": str(root / "model"),
            "data": {"dataset": "files", **files, "joint_vocab": True, "batch_size": 64,
                     "tokenizer": {"type": "sentencepiece", "vocab_size": 300, "lowercase": False}},
            "model": {"architecture": "transformer", "d_model": 64, "num_heads": 4, "ffn_size": 128,
                      "num_encoder_layers": 2, "num_decoder_layers": 2, "dropout": 0.0, "pre_norm": False,
                      "share_embeddings": True, "tie_output": True},
            "train": {"lr": 0.003, "warmup_steps": 50, "max_epochs": 100, "max_steps": 400, "num_threads": 1,
                      "progress": False, "log_every": 1000, "validate_every": 400, "valid_bleu_sentences": 20,
                      "device": "cpu", "tensorboard": False},
            "decode": {"strategy": "greedy", "max_len": 30}}


@pytest.fixture(scope="session")
def tiny_transformer(tmp_path_factory) -> Path:
    """The model directory of a tiny trained Transformer (a few seconds of training, see the config above)."""
    from seqlab.tasks import build_config, train

    root = tmp_path_factory.mktemp("tiny_transformer")
    train(build_config(tiny_transformer_config(root)))
    return root / "model"
