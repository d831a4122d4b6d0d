"""The HTTP contract: request bodies, strictly typed.  Unknown fields and wrong types are refused (422) rather
than guessed at ("5" is not a beam size); the ranges are the CLI's own guards."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

Text = Annotated[str, Field(max_length=10_000)]


class Request(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    model: str | None = None  # a served model's name; default: the first one of the endpoint's task


class DecodeOptions(Request):
    """``None`` keeps the model's saved decode setting, as an absent CLI flag does."""

    beam: Annotated[int, Field(ge=1, le=64)] | None = None
    alpha: Annotated[float, Field(ge=0.0, le=10.0)] | None = None
    nbest: Annotated[int, Field(ge=1, le=64)] | None = None
    max_len: Annotated[int, Field(ge=1, le=1000)] | None = None
    sample: bool = False
    temperature: Annotated[float, Field(gt=0.0, le=100.0)] | None = None
    top_k: Annotated[int, Field(ge=0)] | None = None
    top_p: Annotated[float, Field(gt=0.0, le=1.0)] | None = None
    seed: Annotated[int, Field(ge=0)] | None = None


class TranslateRequest(DecodeOptions):
    texts: list[Text]
    attention: bool = False


class GenerateRequest(Request):
    prompts: list[Text] = Field(default_factory=lambda: [""])
    max_tokens: Annotated[int, Field(ge=0, le=1000)] = 50
    sample: bool = False
    temperature: Annotated[float, Field(gt=0.0, le=100.0)] = 1.0
    top_k: Annotated[int, Field(ge=0)] = 0
    top_p: Annotated[float, Field(gt=0.0, le=1.0)] = 1.0
    seed: Annotated[int, Field(ge=0)] = 0


class ScoreRequest(Request):
    texts: list[Text] = Field(default_factory=list)  # a language model's sentences
    pairs: list[Annotated[list[Text], Field(min_length=2, max_length=2)]] = Field(default_factory=list)  # [src, tgt]


class TextsRequest(Request):
    texts: list[Text]


class CaptionRequest(DecodeOptions):
    images: list[Annotated[str, Field(max_length=4_000_000)]]  # base64 of JPEG / PNG files


class ChatRequest(DecodeOptions):
    dialogues: list[list[Text]]  # each: the turns so far, oldest first; the model replies to the last
