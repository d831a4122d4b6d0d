"""A served model: a model directory loaded once, its task's library calls behind one batch function.

The server decodes through exactly what the CLI calls (``Translator``, ``language_model.generate`` /
``score_sentences``, ``classification.classify``, ``tagging.tag``, ``captioning.caption``, ``dialogue.Responder``), with the decode
options turned into a ``DecodeConfig`` by the same ``decode_config_from_args`` the CLI uses: a sentence served
with some options comes out as ``seqlab translate`` prints it with the same options.

Batching must not change an answer.  Greedy and beam search mask padding exactly, so a sentence's output does not
depend on its batch companions; sampling draws from a generator shared by a batch, so a sampled item is decoded
alone, seeded by its request (``seed``, default 0), as ``seqlab translate --sample --seed S`` decodes one line.
"""

from __future__ import annotations

import argparse
import functools
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Hashable

import torch

from seqlab.run_dir import LoadedModel

DECODE_OPTIONS = ("beam", "alpha", "nbest", "max_len", "sample", "temperature", "top_k", "top_p", "seed")


def decode_config(loaded: LoadedModel, options: dict[str, Any]):
    """The model's saved decode section with a request's options on top, exactly as the CLI's flags apply."""
    from seqlab.commands.shared import decode_config_from_args

    return decode_config_from_args(loaded.config.decode, argparse.Namespace(**options))


def options_key(options: dict[str, Any]) -> Hashable:
    return tuple(sorted(options.items()))


@dataclass
class ServedModel:
    name: str
    directory: Path
    loaded: LoadedModel

    def __post_init__(self):
        # one DecodeConfig per option set seen lately: building one checks every field's type, which costs the
        # event loop more than parsing the request does (a bounded cache: clients choose the options)
        self._decode_configs = functools.lru_cache(maxsize=256)(
            lambda key: decode_config(self.loaded, dict(key)))

    def decode_config(self, options: dict[str, Any]):
        """``decode_config(self.loaded, options)``, cached."""
        return self._decode_configs(options_key(options))

    @property
    def task(self) -> str:
        return self.loaded.task

    def info(self) -> dict[str, Any]:
        """What ``GET /v1/models`` says about the model: task, languages, vocabularies, size, training figures."""
        pre, config = self.loaded.preprocessing, self.loaded.config
        vocabularies = {}
        for attribute in ("src_vocab", "tgt_vocab", "vocab", "tag_vocab", "label_vocab"):
            vocab = getattr(pre, attribute, None)
            if vocab is not None and hasattr(vocab, "__len__"):
                vocabularies[attribute.replace("_vocab", "") or "vocab"] = len(vocab)
        data = config.data
        info = {"name": self.name, "task": self.task, "directory": str(self.directory),
                "architecture": config.model.architecture, "vocabulary_sizes": vocabularies,
                "parameters": sum(p.numel() for p in self.loaded.model.parameters()),
                "training": training_figures(self.directory)}
        for key in ("src_lang", "tgt_lang", "dataset", "level"):
            if getattr(data, key, None) is not None:
                info[key] = getattr(data, key)
        return info

    # ------------------------------------------------------------------------------------------ batch functions
    def translate(self, key: Hashable, lines: list[str]) -> list[dict[str, Any]]:
        from seqlab.tasks.translation import Translator

        options = {name: value for name, value in key if not name.startswith("_")}
        attention = options.pop("attention")
        decode = self.decode_config(options)
        translator = Translator(self.loaded.model, self.loaded.preprocessing, decode, batch_size=max(len(lines), 1))
        return [translation_record(t, attention) for t in translator.translate(lines, return_attention=attention)]

    def generate(self, key: Hashable, prompts: list[str]) -> list[dict[str, Any]]:
        from seqlab.decoding.config import DecodeConfig
        from seqlab.tasks.language_model import generate

        options = dict(key)
        decode = DecodeConfig(strategy="sample" if options["sample"] else "greedy", temperature=options["temperature"],
                              top_k=options["top_k"], top_p=options["top_p"], seed=options["seed"])
        pre = self.loaded.preprocessing
        return [{"prompt": prompt, "text": generate(self.loaded.model, pre, prompt, options["max_tokens"], decode),
                 "unreadable": pre.unreadable(prompt)} for prompt in prompts]

    def score(self, key: Hashable, items: list[Any]) -> list[dict[str, Any]]:
        if self.task == "lm":
            from seqlab.tasks.language_model import score_sentences

            results = score_sentences(self.loaded.model, self.loaded.preprocessing, items)
            return [{"text": r["sentence"], "log_prob": r["log_prob"], "tokens": r["tokens"],
                     "per_token": r["per_token"], "log_base": "e"} for r in results]
        from seqlab.tasks.translation import score_pairs

        return [{**record, "log_base": "e"} for record in score_pairs(self.loaded, [tuple(pair) for pair in items])]

    def classify(self, key: Hashable, texts: list[str]) -> list[dict[str, Any]]:
        from seqlab.tasks.classification import classify

        return [{"text": text, "label": label}
                for text, label in zip(texts, classify(self.loaded, [text.split() for text in texts]))]

    def tag(self, key: Hashable, texts: list[str]) -> list[dict[str, Any]]:
        from seqlab.tasks.tagging import tag

        sentences = [text.split() for text in texts]
        return [{"tokens": words, "tags": tags} for words, tags in zip(sentences, tag(self.loaded, sentences))]

    def caption(self, key: Hashable, images: list[torch.Tensor]) -> list[dict[str, Any]]:
        from seqlab.tasks.captioning import caption

        decode = self.decode_config(dict(key))
        return [{"text": " ".join(words), "tokens": words}
                for words in caption(self.loaded, torch.stack(images), decode)]

    def chat(self, key: Hashable, dialogues: list[list[str]]) -> list[dict[str, Any]]:
        from seqlab.tasks.dialogue import Responder

        options = {name: value for name, value in key if not name.startswith("_")}
        responder = Responder(self.loaded, self.decode_config(options), batch_size=max(len(dialogues), 1))
        return [{"text": reply.text, "tokens": reply.tokens, "score": reply.score,
                 "nbest": [{"text": text, "score": score} for text, score in reply.nbest]}
                for reply in responder.reply(dialogues)]


def translation_record(translation: Any, attention: bool) -> dict[str, Any]:
    """The JSON of one translation: the best hypothesis, and every n-best one with its tokens (and, when asked,
    each one's attention: the page draws whichever hypothesis is chosen)."""
    record = {"text": translation.text, "tokens": translation.tokens, "score": round(translation.score, 4),
              "src_tokens": translation.src_tokens, "nbest": []}
    for index, (text, score) in enumerate(translation.nbest):
        hypothesis = {"text": text, "score": round(score, 4)}
        if index < len(translation.nbest_tokens):
            hypothesis["tokens"] = translation.nbest_tokens[index]
            if attention:
                hypothesis["attention"] = weights_list(translation.nbest_attention[index])
        record["nbest"].append(hypothesis)
    if attention:
        record["attention"] = weights_list(translation.attention)
    return record


def weights_list(weights: torch.Tensor | None) -> list[list[float]] | None:
    return None if weights is None else [[round(float(w), 4) for w in row] for row in weights.float().tolist()]


def training_figures(directory: Path) -> dict[str, Any]:
    """The last validation record of the model's training log (its metric, step and time), if there is one."""
    import json

    log = directory / "train_log.jsonl"
    last: dict[str, Any] = {}
    if log.is_file():
        for line in log.read_text(encoding="utf-8").splitlines():
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                continue
            if record.get("event") == "validate":
                last = record
    return {key: value for key, value in last.items() if key not in ("event", "best")}
