"""``seqlab serve MODEL_DIR [MODEL_DIR ...]``: the models behind an HTTP API and a web page (``seqlab.serve``).

Bound to 127.0.0.1 by default; another host needs ``--api-key-file`` (requests without the key get 401) or
``--insecure``, which the start-up banner warns about.  SIGINT / SIGTERM: in-flight requests finish, then exit 0.
The model directories are only read.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from seqlab.errors import SeqlabError

HELP = "serve trained models over HTTP: a JSON API, dynamic batching, metrics and a web page"
LOOPBACK = ("127.0.0.1", "localhost", "::1")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model_dirs", nargs="+", metavar="MODEL_DIR", help="directories written by `seqlab train`")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--max-batch-sentences", type=int, default=64,
                        help="most sentences decoded together (1 turns dynamic batching off)")
    parser.add_argument("--max-wait-ms", type=float, default=10.0, help="how long a sentence waits for companions")
    parser.add_argument("--threads", type=int, default=1, help="PyTorch threads of the decoding workers")
    parser.add_argument("--api-key-file", help="a file holding the key every /v1 request must send")
    parser.add_argument("--insecure", action="store_true", help="allow a non-loopback host without an API key")
    parser.add_argument("--max-texts", type=int, default=64, help="most texts per request")
    parser.add_argument("--max-chars", type=int, default=20_000, help="most characters per request")
    parser.add_argument("--quantize", choices=["int8"], help="decode with int8 weights (seqlab.quantize)")
    parser.add_argument("--checkpoint", choices=["best", "last"], default="best")
    parser.add_argument("--keep-alive-s", type=float, default=75.0,
                        help="how long an idle connection stays open (above any proxy's idle timeout)")


def run(args: argparse.Namespace) -> int:
    import importlib.util

    import torch

    missing = [name for name in ("fastapi", "uvicorn", "prometheus_client") if importlib.util.find_spec(name) is None]
    if missing:
        raise SeqlabError(f"serve: needs {', '.join(missing)}; install them with pip install 'seqlab[serve]'")

    from seqlab.serve.app import ServeSettings, create_app
    from seqlab.serve.models import ServedModel
    from seqlab.tasks import load_model_dir

    for name, value, low in (("--port", args.port, 0), ("--max-batch-sentences", args.max_batch_sentences, 1),
                             ("--threads", args.threads, 1), ("--max-texts", args.max_texts, 1),
                             ("--max-chars", args.max_chars, 1)):
        if value < low:
            raise SeqlabError(f"{name}: must be >= {low}, got {value}")
    if args.max_wait_ms < 0:
        raise SeqlabError(f"--max-wait-ms: must be >= 0, got {args.max_wait_ms}")
    key = read_key(args.api_key_file) if args.api_key_file else None
    if args.host not in LOOPBACK and key is None and not args.insecure:
        raise SeqlabError(f"--host {args.host}: other machines could reach the models; give --api-key-file FILE "
                          "(or --insecure to serve without a key)")
    torch.set_num_threads(args.threads)
    models, names = [], set()
    for directory in args.model_dirs:
        name = unique_name(Path(directory).resolve().name or "model", names)
        loaded = load_model_dir(directory, args.checkpoint, quantize=args.quantize)
        models.append(ServedModel(name, Path(directory), loaded))
    settings = ServeSettings(max_batch_sentences=args.max_batch_sentences, max_wait_ms=args.max_wait_ms,
                             max_texts=args.max_texts, max_chars=args.max_chars, api_key=key)
    app = create_app(models, settings)
    banner(models, args, key)
    import uvicorn

    # a client that pools connections (httpx, requests.Session, a browser, a proxy) may send on an idle one just
    # as the server closes it, and gets a reset: uvicorn's 5 s default is shorter than one full batch of beam
    # search on a busy CPU, so under load whole rounds of pooled connections sit idle that long
    config = uvicorn.Config(app, host=args.host, port=args.port, log_level="warning", timeout_graceful_shutdown=30,
                            timeout_keep_alive=args.keep_alive_s)
    GracefulServer(config).run()
    return 0


def graceful_server_class():
    """uvicorn's Server, except that SIGINT / SIGTERM end it with exit code 0 once in-flight requests are
    answered (uvicorn re-raises the signal after its graceful shutdown, so the process would die of it)."""
    import contextlib
    import signal

    import uvicorn

    class Server(uvicorn.Server):
        @contextlib.contextmanager
        def capture_signals(self):
            previous = {sig: signal.signal(sig, self.handle_exit) for sig in (signal.SIGINT, signal.SIGTERM)}
            try:
                yield
            finally:
                for sig, handler in previous.items():
                    signal.signal(sig, handler)

    return Server


def GracefulServer(config):  # noqa: N802 (a class made on demand: uvicorn is imported only when serving)
    return graceful_server_class()(config)


def read_key(path: str) -> str:
    file = Path(path)
    if not file.is_file():
        raise SeqlabError(f"--api-key-file: {path}: no such file")
    key = file.read_text(encoding="utf-8").strip()
    if len(key) < 8:
        raise SeqlabError(f"--api-key-file: {path}: the key must be at least 8 characters")
    return key


def unique_name(name: str, taken: set[str]) -> str:
    candidate, number = name, 2
    while candidate in taken:
        candidate, number = f"{name}-{number}", number + 1
    taken.add(candidate)
    return candidate


def banner(models: list, args: argparse.Namespace, key: str | None) -> None:
    shown = ", ".join(f"{m.name} ({m.task})" for m in models)
    print(f"seqlab serve: {shown} on http://{args.host}:{args.port}/ (API /v1/..., metrics /metrics); "
          f"batches of up to {args.max_batch_sentences}, {args.max_wait_ms:g} ms wait", file=sys.stderr, flush=True)
    if args.host not in LOOPBACK and key is None:
        print(f"seqlab serve: WARNING: --insecure: {args.host} serves without an API key; anyone who can reach "
              "this port can use the models", file=sys.stderr, flush=True)
