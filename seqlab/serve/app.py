"""The ASGI app: endpoints per task, one batch worker per model, JSON errors, limits, an API key, metrics.

    app = create_app([ServedModel(...)], ServeSettings(max_batch_sentences=64))
    uvicorn.run(app)        # what `seqlab serve` does

Every error reaches the client as ``{"error": "one line naming the field"}``: malformed JSON 400, a missing or
wrong key 401, an unknown model 404, a body or a request over its limits 413, wrong types / unknown fields /
out-of-range options 422, and anything unexpected 500 without a traceback (it goes to the server's log).
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import io
import itertools
import logging
import time
from dataclasses import dataclass
from importlib import resources
from typing import Any, Callable

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, PlainTextResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from starlette.exceptions import HTTPException

from seqlab.errors import SeqlabError
from seqlab.serve import schemas
from seqlab.serve.batching import BatchWorker, return_freed_memory
from seqlab.serve.models import DECODE_OPTIONS, ServedModel, options_key

log = logging.getLogger("seqlab.serve")


@dataclass
class ServeSettings:
    max_batch_sentences: int = 64
    max_wait_ms: float = 10.0
    max_texts: int = 64  # per request
    max_chars: int = 20_000  # all texts of a request together
    max_body_bytes: int = 8 * 1024 * 1024  # images travel base64-encoded in the body
    api_key: str | None = None


class ServeError(Exception):
    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status, self.message = status, message


def create_app(models: list[ServedModel], settings: ServeSettings | None = None) -> FastAPI:
    settings = settings or ServeSettings()
    workers: dict[str, dict[str, BatchWorker]] = {}

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI):
        yield
        for per_model in workers.values():  # shutdown: what is queued is decoded and answered first
            for batch_worker in per_model.values():
                batch_worker.close()

    # FastAPI's own OpenTelemetry hooks are off: /metrics is the server's telemetry, and under load the hooks
    # cost the event loop (which shares the GIL with the decoding thread) a tenth of its time
    app = FastAPI(title="seqlab", docs_url=None, redoc_url=None, openapi_url=None, lifespan=lifespan,
                  telemetry={"tracing": False, "metrics": False, "logs": False, "operation_spans": False})
    metrics = Metrics()
    by_name = {model.name: model for model in models}
    alone = itertools.count()  # keys that keep sampled sentences out of each other's batches

    def worker(model: ServedModel, endpoint: str, function: Callable) -> BatchWorker:
        size_of = len if endpoint in ("translate", "generate", "classify", "tag") else None
        """One worker per model (per endpoint kind, each on its own queue; they share the model's weights)."""
        per_model = workers.setdefault(model.name, {})
        if endpoint not in per_model:
            per_model[endpoint] = BatchWorker(function, settings.max_batch_sentences, settings.max_wait_ms,
                                              on_batch=metrics.batch_sizes.labels(model.name).observe,
                                              size_of=size_of, after_batch=return_freed_memory)
            metrics.queue_depth.labels(model.name, endpoint).set_function(per_model[endpoint].depth)
        return per_model[endpoint]

    app.state.models, app.state.settings, app.state.workers = by_name, settings, workers

    # ------------------------------------------------------------------------------------------------ errors
    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, error: RequestValidationError) -> JSONResponse:
        first = error.errors()[0]
        if first.get("type") == "json_invalid":
            return error_response(400, f"malformed JSON ({first.get('ctx', {}).get('error', 'cannot parse')})")
        where = ".".join(str(part) for part in first.get("loc", ()) if part != "body") or "body"
        return error_response(422, f"{where}: {first.get('msg', 'invalid')}")

    @app.exception_handler(ServeError)
    async def refused(request: Request, error: ServeError) -> JSONResponse:
        return error_response(error.status, error.message)

    @app.exception_handler(SeqlabError)
    async def bad_option(request: Request, error: SeqlabError) -> JSONResponse:  # e.g. nbest above beam
        return error_response(422, str(error).splitlines()[0])

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, error: HTTPException) -> JSONResponse:
        return error_response(error.status_code, str(error.detail))

    @app.exception_handler(Exception)
    async def unexpected(request: Request, error: Exception) -> JSONResponse:
        log.exception("unexpected error on %s", request.url.path)
        return error_response(500, f"internal error ({type(error).__name__}); the server log has the details")

    # ------------------------------------------------------------------------------------------------ helpers
    def choose(name: str | None, tasks: tuple[str, ...], endpoint: str) -> ServedModel:
        if name is not None:
            if name not in by_name:
                raise ServeError(404, f"model: no served model named {name!r} (GET /v1/models lists them)")
            if by_name[name].task not in tasks:
                raise ServeError(422, f"model: {name!r} is a {by_name[name].task} model; {endpoint} needs "
                                      f"{' or '.join(tasks)}")
            return by_name[name]
        for model in models:
            if model.task in tasks:
                return model
        raise ServeError(404, f"model: no {' or '.join(tasks)} model is served ({endpoint})")

    def check_texts(texts: list[str], field: str = "texts") -> None:
        if not texts:
            raise ServeError(422, f"{field}: give at least one")
        if len(texts) > settings.max_texts:
            raise ServeError(413, f"{field}: {len(texts)} items, above the limit of {settings.max_texts} per request")
        chars = sum(len(text) for text in texts)
        if chars > settings.max_chars:
            raise ServeError(413, f"{field}: {chars} characters, above the limit of {settings.max_chars} per request")

    def decode_options(body: schemas.DecodeOptions) -> dict[str, Any]:
        return {name: getattr(body, name) for name in DECODE_OPTIONS}

    def answer(model: ServedModel, start: float, **fields: Any) -> dict[str, Any]:
        return {**fields, "model": model.name, "elapsed_ms": round(1000 * (time.perf_counter() - start), 2)}

    # ------------------------------------------------------------------------------------------------ endpoints
    @app.get("/", response_class=HTMLResponse)
    def page() -> str:
        return static_text("index.html")

    @app.get("/static/{name}")
    def static(name: str) -> Response:
        if name not in ("app.js", "style.css"):
            raise ServeError(404, f"{name}: no such file")
        media = "text/javascript" if name.endswith(".js") else "text/css"
        return Response(static_text(name), media_type=media)

    @app.get("/healthz")
    def healthz() -> dict[str, Any]:
        return {"status": "ok", "models": list(by_name)}

    @app.get("/metrics")
    def prometheus() -> Response:
        return PlainTextResponse(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    @app.get("/v1/models")
    def list_models() -> dict[str, Any]:
        return {"models": [model.info() for model in models]}

    @app.post("/v1/translate")
    async def translate(body: schemas.TranslateRequest) -> dict[str, Any]:
        start = time.perf_counter()
        model = choose(body.model, ("translation",), "/v1/translate")
        check_texts(body.texts)
        options = decode_options(body)
        model.decode_config(options)  # refuse bad combinations (nbest > beam) before queueing
        options["attention"] = body.attention
        results = await searched(model, "translate", options, body.texts)
        return answer(model, start, translations=results)

    async def searched(model: ServedModel, method: str, options: dict[str, Any], items: list[Any]) -> list[Any]:
        """Items decoded by search, batched with other requests; a sampled item is decoded alone, seeded by its
        request (see serve/models.py)."""
        run = worker(model, method, getattr(model, method)).run
        if not options["sample"]:
            return await run(options_key(options), items)
        results = []
        for item in items:
            results += await run(options_key({**options, "_alone": next(alone)}), [item])
        return results

    @app.post("/v1/chat")
    async def chat(body: schemas.ChatRequest) -> dict[str, Any]:
        """Each dialogue: its turns so far, oldest first (the client keeps the history); one reply each."""
        start = time.perf_counter()
        model = choose(body.model, ("dialogue",), "/v1/chat")
        check_texts([" ".join(turns) for turns in body.dialogues], "dialogues")
        if any(not turns or not all(turn.strip() for turn in turns) for turns in body.dialogues):
            raise ServeError(422, "dialogues: every dialogue needs at least one turn, and no turn may be empty")
        options = decode_options(body)
        model.decode_config(options)  # refuse bad combinations (nbest > beam) before queueing
        results = await searched(model, "chat", options, [list(turns) for turns in body.dialogues])
        return answer(model, start, replies=results)

    @app.post("/v1/generate")
    async def generate(body: schemas.GenerateRequest) -> dict[str, Any]:
        start = time.perf_counter()
        model = choose(body.model, ("lm",), "/v1/generate")
        check_texts(body.prompts, "prompts")
        options = {name: getattr(body, name) for name in ("max_tokens", "sample", "temperature", "top_k", "top_p",
                                                           "seed")}
        results = await worker(model, "generate", model.generate).run(options_key(options), body.prompts)
        return answer(model, start, generations=results)

    @app.post("/v1/score")
    async def score(body: schemas.ScoreRequest) -> dict[str, Any]:
        start = time.perf_counter()
        # texts: a language model's sentences; pairs: forced decoding with a translation model
        model = choose(body.model, ("lm", "translation") if body.model else ("lm",) if body.texts else ("translation",),
                       "/v1/score")
        if model.task == "lm":
            check_texts(body.texts)
            items: list[Any] = [text for text in body.texts]
            if any(not text.strip() for text in items):
                raise ServeError(422, "texts: an empty sentence has no score")
        else:
            check_texts([pair[0] + pair[1] for pair in body.pairs], "pairs")
            items = [tuple(pair) for pair in body.pairs]
        results = await worker(model, "score", model.score).run((), items)
        return answer(model, start, scores=results)

    async def label_texts(body: schemas.TextsRequest, task: str, endpoint: str, method: str) -> tuple:
        """Classification and tagging: a list of texts in, one answer per text out, no decode options."""
        start = time.perf_counter()
        model = choose(body.model, (task,), endpoint)
        check_texts(body.texts)
        return model, start, await worker(model, method, getattr(model, method)).run((), body.texts)

    @app.post("/v1/classify")
    async def classify(body: schemas.TextsRequest) -> dict[str, Any]:
        model, start, labels = await label_texts(body, "classification", "/v1/classify", "classify")
        return answer(model, start, labels=labels)

    @app.post("/v1/tag")
    async def tag(body: schemas.TextsRequest) -> dict[str, Any]:
        model, start, tagged = await label_texts(body, "tagging", "/v1/tag", "tag")
        return answer(model, start, tagged=tagged)

    @app.post("/v1/caption")
    async def caption(body: schemas.CaptionRequest) -> dict[str, Any]:
        start = time.perf_counter()
        model = choose(body.model, ("captioning",), "/v1/caption")
        if not body.images or len(body.images) > settings.max_texts:
            raise ServeError(413 if body.images else 422,
                             f"images: give 1 to {settings.max_texts} images, got {len(body.images)}")
        images = [decode_image(data, index, model.loaded.preprocessing.image_size)
                  for index, data in enumerate(body.images)]
        options = decode_options(body)
        results = await worker(model, "caption", model.caption).run(options_key(options), images)
        return answer(model, start, captions=results)

    return Counted(BodyLimit(KeyCheck(app, settings.api_key), settings.max_body_bytes), metrics)


ENDPOINTS = ("/", "/healthz", "/metrics", "/v1/models", "/v1/translate", "/v1/generate", "/v1/score",
             "/v1/classify", "/v1/tag", "/v1/caption", "/v1/chat")


def error_response(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


def static_text(name: str) -> str:
    return resources.files("seqlab.serve").joinpath("static", name).read_text(encoding="utf-8")


def decode_image(data: str, index: int, size: int):
    """base64 JPEG/PNG -> uint8 (3, size, size), as ``read_image_file`` reads one from disk."""
    import numpy as np
    import torch
    from PIL import Image, UnidentifiedImageError

    from seqlab.data.images import resize_images

    try:
        raw = base64.b64decode(data.split(",", 1)[-1], validate=True)  # a data: URL's prefix is allowed
        with Image.open(io.BytesIO(raw)) as image:
            pixels = np.asarray(image.convert("RGB"))
    except (binascii.Error, ValueError):
        raise ServeError(422, f"images.{index}: not base64") from None
    except (UnidentifiedImageError, OSError) as error:
        raise ServeError(422, f"images.{index}: not a readable image ({type(error).__name__})") from None
    return resize_images(torch.from_numpy(pixels.copy()).permute(2, 0, 1).unsqueeze(0), size)[0]


class Metrics:
    """Prometheus metrics on a registry of the app's own (two apps in one process do not collide)."""

    def __init__(self):
        self.registry = CollectorRegistry()
        self.requests = Counter("seqlab_requests", "HTTP requests", ["endpoint", "status"], registry=self.registry)
        self.errors = Counter("seqlab_request_errors", "HTTP requests answered with an error", ["endpoint"],
                              registry=self.registry)
        self.latency = Histogram("seqlab_request_seconds", "request latency", ["endpoint"], registry=self.registry,
                                 buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30))
        self.batch_sizes = Histogram("seqlab_batch_sentences", "items decoded per batch", ["model"],
                                     registry=self.registry, buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256))
        self.queue_depth = Gauge("seqlab_queue_depth", "items waiting for a batch", ["model", "endpoint"],
                                 registry=self.registry)


class Counted:
    """ASGI: every HTTP request counted by endpoint and status, errors counted, latency observed (until the
    response's last byte is handed over).  A plain ASGI wrapper rather than Starlette's ``BaseHTTPMiddleware``,
    which runs each request through extra tasks and streams: under load that cost the event loop a fifth of
    its time.  Outermost, so refusals by the API key and the body limit are counted too."""

    def __init__(self, app, metrics: Metrics):
        self.app, self.metrics = app, metrics

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        start, status = time.perf_counter(), 500  # what the client gets if the app fails before answering

        async def noted(message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, noted)
        finally:
            endpoint = scope["path"] if scope["path"] in ENDPOINTS else "other"
            self.metrics.requests.labels(endpoint, str(status)).inc()
            if status >= 400:
                self.metrics.errors.labels(endpoint).inc()
            self.metrics.latency.labels(endpoint).observe(time.perf_counter() - start)


class KeyCheck:
    """ASGI: with an API key, every /v1 and /metrics request must carry it (``Authorization: Bearer KEY`` or
    ``X-API-Key: KEY``); the page and /healthz stay open (the page sends the key the user types)."""

    def __init__(self, app, key: str | None):
        self.app, self.key = app, key

    async def __call__(self, scope, receive, send) -> None:
        if self.key is None or scope["type"] != "http" or not scope["path"].startswith(("/v1", "/metrics")):
            return await self.app(scope, receive, send)
        headers = {name.decode("latin-1").lower(): value.decode("latin-1") for name, value in scope["headers"]}
        given = headers.get("x-api-key") or headers.get("authorization", "").removeprefix("Bearer ").strip()
        import hmac

        if not given or not hmac.compare_digest(given, self.key):
            response = error_response(401, "missing or wrong API key (Authorization: Bearer KEY or X-API-Key)")
            return await response(scope, receive, send)
        return await self.app(scope, receive, send)


class BodyLimit:
    """ASGI: a body over ``limit`` bytes is refused with 413 before it is parsed (by Content-Length, or while
    it streams in when there is none)."""

    def __init__(self, app, limit: int):
        self.app, self.limit = app, limit

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        too_big = error_response(413, f"body: above the limit of {self.limit} bytes")
        for name, value in scope["headers"]:
            if name.lower() == b"content-length" and value.isdigit() and int(value) > self.limit:
                return await too_big(scope, receive, send)
        received = 0

        async def counted():
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.limit:
                    raise ServeError(413, f"body: above the limit of {self.limit} bytes")
            return message

        return await self.app(scope, counted, send)
