"""Export a trained Transformer to the formats deployments run: Hugging Face, CTranslate2, ONNX Runtime.

    export("runs/m30k", "hf", "out/m30k-hf")                    # MarianMTModel + MarianTokenizer directory
    export("runs/m30k", "ctranslate2", "out/m30k-ct2", "int8")  # ctranslate2.Translator directory
    export("runs/m30k", "onnx", "out/m30k-onnx")                # encoder.onnx + decoder_step.onnx

Every format holds the same network as seqlab's ``TransformerSeq2Seq`` and is tested to decode what seqlab
decodes (``tests/integration/test_export.py``).  The output is written into a temporary directory beside ``OUT``
and renamed into place once complete, so a failed export leaves nothing half-written; an existing ``OUT`` is
refused.  The libraries (transformers, ctranslate2, onnx) are the optional ``export`` extra:
``pip install -e ".[export]"``.

RNN models are refused: none of the three formats has their architecture (Marian, CTranslate2's Transformer
spec and the ONNX decoder step here are Transformers).
"""

from __future__ import annotations

import contextlib
import importlib
import shutil
import tempfile
from pathlib import Path
from typing import Iterator

from seqlab.errors import ConfigError, SeqlabError
from seqlab.utils import _umask

# format -> (module, the extra's package it needs)
FORMATS = {"hf": ("seqlab.export.hf", "transformers"), "ctranslate2": ("seqlab.export.ct2", "ctranslate2"),
           "onnx": ("seqlab.export.onnx_export", "onnxruntime")}


def export(model_dir: str | Path, format: str, out: str | Path, quantization: str | None = None,
           checkpoint: str = "best") -> Path:
    """Write ``model_dir``'s model as ``format`` into the new directory ``out``; returns ``out``.
    ``quantization``: ctranslate2 only, "int8" (or None / "float32")."""
    from seqlab.tasks import load_model_dir

    if format not in FORMATS:
        raise ConfigError(f"--format: must be one of {', '.join(FORMATS)}, got {format!r}")
    if quantization not in (None, "float32", "int8"):
        raise ConfigError(f"--quantization: must be float32 or int8, got {quantization!r}")
    if quantization == "int8" and format != "ctranslate2":
        raise ConfigError(f"--quantization: only --format ctranslate2 stores int8 weights, not {format}")
    out = Path(out)
    if out.exists():
        raise SeqlabError(f"{out}: already exists; export writes a new directory")
    module_name, package = FORMATS[format]
    try:
        importlib.import_module(package)
    except ImportError:
        raise SeqlabError(f"--format {format}: needs {package} (pip install 'seqlab[export]')") from None
    loaded = load_model_dir(model_dir, checkpoint, task="translation")
    check_exportable(loaded, format)
    with staged_directory(out) as staging:
        importlib.import_module(module_name).write(loaded, staging, quantization)
    return out


def check_exportable(loaded, format: str) -> None:
    """A one-line refusal for what ``format`` cannot hold."""
    config = loaded.config.model
    if config.architecture != "transformer":
        raise SeqlabError(f"export --format {format}: a {config.architecture} model cannot be exported "
                          "(the formats hold Transformers only)")
    if format == "onnx":
        return
    if config.options.pre_norm or config.options.positions != "sinusoidal":
        raise SeqlabError(f"export --format {format}: needs Marian's architecture (post-LN, sinusoidal "
                          f"positions), got pre_norm={config.options.pre_norm}, "
                          f"positions={config.options.positions}")
    if not (config.options.share_embeddings and config.options.tie_output):
        raise SeqlabError(f"export --format {format}: needs one embedding table shared by source, target and "
                          "output (model.share_embeddings and model.tie_output)")
    pre = loaded.preprocessing
    if pre.src_vocab != pre.tgt_vocab:
        raise SeqlabError(f"export --format {format}: needs one joint vocabulary (data.joint_vocab: true)")
    for side, tokenizer in (("source", pre.src_tokenizer), ("target", pre.tgt_tokenizer)):
        if type(tokenizer).__name__ != "SentencePieceTokenizer" or tokenizer.lowercase:
            raise SeqlabError(f"export --format {format}: the {side} tokenizer must be sentencepiece without "
                              "lowercase (MarianTokenizer runs the sentencepiece model alone)")


@contextlib.contextmanager
def staged_directory(out: Path) -> Iterator[Path]:
    """A fresh directory beside ``out``, renamed to ``out`` when the block completes, removed if it fails."""
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent))
    try:
        yield staging
        # mkdtemp's 0700 (and some writers' 0600) would hide the export from the group and others
        staging.chmod(0o777 & ~_umask())
        for path in staging.rglob("*"):
            path.chmod((0o777 if path.is_dir() else 0o666) & ~_umask())
        staging.rename(out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise

