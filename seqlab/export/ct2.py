"""``--format ctranslate2``: a CTranslate2 model directory (fp32, or int8 weights with ``--quantization int8``).

    translator = ctranslate2.Translator(OUT)
    translator.translate_batch([pieces + ["<eos>"]])       # sentencepiece pieces of source.spm, then <eos>

The path goes through the Hugging Face export (``seqlab.export.hf``), then CTranslate2's own converter code: its
loader for BART, told that the model is post-LN without an embedding LayerNorm, builds the Transformer spec from
the ``MarianMTModel``.  CTranslate2's Marian loader does not fit: it assumes Marian's own conventions, a decoder
that starts from a zero embedding and a vocabulary whose last entry is an added <pad> (it drops the last row:
7794 entries become 7793), where seqlab's decoder starts from <bos> and pad is id 0.  The directory also gets
source.spm / target.spm so a deployment can tokenize.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from seqlab.export import hf
from seqlab.run_dir import LoadedModel


def write(loaded: LoadedModel, out: Path, quantization: str | None = None) -> None:
    from transformers import AutoTokenizer, MarianMTModel

    with tempfile.TemporaryDirectory(prefix=".hf-", dir=out.parent) as hf_dir:
        hf.write(loaded, Path(hf_dir))
        model = MarianMTModel.from_pretrained(hf_dir).eval()  # as reloaded from disk: what a user converts
        tokenizer = AutoTokenizer.from_pretrained(hf_dir)
        # force: ``out`` is the (empty) staging directory that seqlab.export renames into place
        converter(model, tokenizer).convert(str(out), quantization=None if quantization == "float32" else quantization,
                                            force=True)
        for name in ("source.spm", "target.spm"):
            shutil.copy(Path(hf_dir) / name, out / name)


def converter(model, tokenizer):
    """A ``ctranslate2.converters.Converter`` of an in-memory ``MarianMTModel`` through the BART loader."""
    from ctranslate2.converters import Converter
    from ctranslate2.converters.transformers import BartLoader

    class MarianAsBart(Converter):
        def _load(self):
            model.config.normalize_before = False  # post-LN
            model.config.normalize_embedding = False  # no LayerNorm on the embeddings (BART has one)
            return BartLoader()(model, tokenizer)

    return MarianAsBart()
