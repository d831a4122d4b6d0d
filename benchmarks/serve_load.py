r"""``seqlab serve`` under load: throughput, latency, errors and memory with dynamic batching on and off, against
offline ``seqlab translate`` of the same sentences in one process.

Protocol: every request and the offline pass use beam ``--beam`` (5 by default).  The server
runs as its own process (``seqlab serve MODEL_DIR --threads T``); ``--clients`` concurrent
clients (asyncio + httpx on loopback, in this process) each send one test_2016 sentence per request, cycling
through the first ``--sentences`` sentences, for ``--duration`` seconds; once with dynamic batching
(``--max-batch-sentences 64 --max-wait-ms 10``) and once without (``--max-batch-sentences 1``).  Every answer is
compared with the offline translation of its sentence: ``errors`` counts failed requests, ``differ_from_offline``
answers that are not the offline one (beam search over a batch of other lengths can break a near-tie the other
way: the floating-point sums of a padded batch are not bit-identical to another batch's).  The offline figure is
``Translator.translate`` over the same sentences in batches of 64, sorted by length, as ``seqlab translate``
does, on the same number of threads.  The clients are a load generator, not what is measured: their process runs
at niceness ``--client-nice`` (10) and the servers are started back at the usual priority (``nice -n -10``, when
the script runs as root), so the clients take the CPU the server leaves (on a machine with cores to spare this
changes nothing).  Server RSS is read from /proc at the start of the load (after a warm-up request of 64
sentences, a full batch) and at its end.  ``server_cores`` is the share of a core each server thread had during
the load (from /proc): the event loop, the decoding worker (the busiest other thread), all together.

    python benchmarks/serve_load.py --model-dir runs/multi30k_transformer_postln

Writes benchmarks/results/serve_load.json.  The client shares the machine with the server: on 2 cores the
figures are the server's throughput with 200 niced clients on the same cores.
"""

from __future__ import annotations

import argparse
import asyncio
import gzip
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import torch

from common import ROOT, git_commit, machine, write_result


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def start_server(model_dir: str, port: int, threads: int, max_batch: int) -> subprocess.Popen:
    import httpx

    log = tempfile.TemporaryFile("w+")  # the server's stderr: a pipe nobody reads could fill and stall it

    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": str(threads)}
    process = subprocess.Popen([*(["nice", "-n", "-10"] if os.geteuid() == 0 else []),
                                sys.executable, "-m", "seqlab", "serve", model_dir, "--port", str(port),
                                "--threads", str(threads), "--max-batch-sentences", str(max_batch),
                                "--max-texts", "64"], env=env, stderr=log, text=True)
    for _ in range(600):
        if process.poll() is not None:
            log.seek(0)
            raise SystemExit(f"server exited: {log.read()}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return process
        except httpx.HTTPError:
            time.sleep(0.2)
    raise SystemExit("server did not start")


def thread_cpu_seconds(pid: int) -> dict[int, float]:
    """CPU seconds (user + system) of each thread of ``pid``, by thread id."""
    tick, seconds = os.sysconf("SC_CLK_TCK"), {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            fields = (task / "stat").read_text().rsplit(")", 1)[1].split()
        except (FileNotFoundError, ProcessLookupError):
            continue  # a thread that ended meanwhile
        seconds[int(task.name)] = (int(fields[11]) + int(fields[12])) / tick
    return seconds


def cores_used(pid: int, before: dict[int, float], elapsed: float) -> dict[str, object]:
    """How much of a core each server thread had during the load: the event loop is the main thread; the
    decoding worker is the busiest of the others.  A worker below 1.0 was waiting (for the GIL or the CPU)."""
    after = thread_cpu_seconds(pid)
    used = {tid: (after[tid] - before.get(tid, 0.0)) / elapsed for tid in after}
    others = sorted((share for tid, share in used.items() if tid != pid), reverse=True)
    return {"event_loop": round(used.get(pid, 0.0), 3), "busiest_other_thread": round(others[0], 3) if others else 0.0,
            "all_threads": round(sum(used.values()), 3)}


async def drive(port: int, sentences: list[str], expected: dict[str, str], clients: int, duration: float,
                beam: int) -> dict:
    import httpx

    latencies, errors, done, differ = [], 0, 0, 0
    error_kinds: dict[str, int] = {}  # status code or exception class -> count
    stop_at = time.monotonic() + duration
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", limits=limits, timeout=120) as client:
        async def one_client(index: int) -> None:
            nonlocal errors, done, differ
            position = index
            while time.monotonic() < stop_at:
                sentence = sentences[position % len(sentences)]
                position += clients
                start = time.perf_counter()
                try:
                    response = await client.post("/v1/translate", json={"texts": [sentence], "beam": beam})
                    text = response.json()["translations"][0]["text"] if response.status_code == 200 else None
                    kind = f"HTTP {response.status_code}"
                except (httpx.HTTPError, KeyError, ValueError) as error:
                    text, kind = None, type(error).__name__
                if text is None:
                    error_kinds[kind] = error_kinds.get(kind, 0) + 1
                latencies.append(time.perf_counter() - start)
                if text is None:
                    errors += 1
                    continue
                done += 1
                differ += text != expected[sentence]

        started = time.monotonic()
        await asyncio.gather(*(one_client(i) for i in range(clients)))
        elapsed = time.monotonic() - started
    latencies.sort()

    def percentile(q: float) -> float:
        return round(1000 * latencies[min(len(latencies) - 1, int(q * len(latencies)))], 1)

    return {"sentences": done, "errors": errors, "error_kinds": error_kinds, "differ_from_offline": differ, "seconds": round(elapsed, 1),
            "sentences_per_second": round(done / elapsed, 2), "p50_ms": percentile(0.50),
            "p95_ms": percentile(0.95), "p99_ms": percentile(0.99)}


def load_run(args, sentences, expected, max_batch: int) -> dict:
    import httpx

    port = free_port()
    server = start_server(args.model_dir, port, args.threads, max_batch)
    try:
        httpx.post(f"http://127.0.0.1:{port}/v1/translate", json={"texts": sentences[:64]}, timeout=120)  # warm-up
        rss_start = rss_mb(server.pid)
        trace: list[float] = []
        sampling = threading.Event()

        def sample_rss() -> None:  # every 5 s: does the memory level off, or keep growing?
            while not sampling.wait(5.0):
                trace.append(round(rss_mb(server.pid), 1))

        sampler = threading.Thread(target=sample_rss, daemon=True)
        sampler.start()
        cpu_before, load_start = thread_cpu_seconds(server.pid), time.monotonic()
        result = asyncio.run(drive(port, sentences, expected, args.clients, args.duration, args.beam))
        load_seconds = time.monotonic() - load_start
        result["server_cores"] = cores_used(server.pid, cpu_before, load_seconds)
        worker_cpu = result["server_cores"]["busiest_other_thread"] * load_seconds
        result["sentences_per_worker_cpu_second"] = round(result["sentences"] / max(worker_cpu, 1e-9), 2)
        sampling.set()
        result["rss_trace_mb"] = trace
        result.update(rss_start_mb=round(rss_start, 1), rss_end_mb=round(rss_mb(server.pid), 1))
        result["rss_growth"] = round(result["rss_end_mb"] / result["rss_start_mb"] - 1, 3)
        result["max_batch_sentences"] = max_batch
    finally:
        server.send_signal(signal.SIGTERM)
        result_code = server.wait(timeout=240)
    result["exit_code"] = result_code
    print(f"max_batch={max_batch}: {result}", flush=True)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model-dir", required=True)
    parser.add_argument("--data-dir", default=str(ROOT.parent / "shared" / "data" / "multi30k"))
    parser.add_argument("--sentences", type=int, default=1000)
    parser.add_argument("--clients", type=int, default=200)
    parser.add_argument("--duration", type=float, default=60.0)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--beam", type=int, default=5, help="beam size of every request and of the offline pass")
    parser.add_argument("--client-nice", type=int, default=10,
                        help="niceness of the load-generating clients: they take the CPU the server leaves")
    parser.add_argument("--batched-only", action="store_true", help="skip the unbatched run (a quick look)")
    args = parser.parse_args()
    wall = time.monotonic()

    from seqlab.tasks import load_model_dir
    from seqlab.tasks.translation import Translator

    torch.set_num_threads(args.threads)
    loaded = load_model_dir(args.model_dir)
    lang = loaded.config.data.src_lang
    with gzip.open(Path(args.data_dir) / "raw" / f"test_2016_flickr.{lang}.gz", "rt", encoding="utf-8") as handle:
        sentences = [line.rstrip("\n") for line in handle][: args.sentences]
    from seqlab.serve.models import decode_config

    decode = decode_config(loaded, {"beam": args.beam, "alpha": None, "nbest": None, "max_len": None, "sample": False,
                                    "temperature": None, "top_k": None, "top_p": None, "seed": None})
    translator = Translator(loaded.model, loaded.preprocessing, decode, batch_size=64)
    translator.translate(sentences[:64])  # warm-up
    start, cpu_start = time.perf_counter(), time.process_time()
    offline = translator.translate(sentences)
    offline_seconds, offline_cpu = time.perf_counter() - start, time.process_time() - cpu_start
    expected = {s: t.text for s, t in zip(sentences, offline)}
    offline_rate = len(sentences) / offline_seconds
    print(f"offline: {offline_rate:.2f} sentences/s, {len(sentences) / offline_cpu:.2f} per CPU-second", flush=True)
    os.nice(args.client_nice)  # from here on this process is the load generator (servers: nice -10 when root)
    del loaded, translator

    batched = load_run(args, sentences, expected, 64)
    if args.batched_only:  # a look at memory over a longer run: serve_load_batched.json
        path = write_result("serve_load_batched", {
            "benchmark": "serve_load --batched-only", "command": "python " + " ".join(sys.argv),
            "commit": git_commit(), "machine": machine(), "model_dir": args.model_dir, "clients": args.clients,
            "duration_s": args.duration, "threads": args.threads,
            "offline_sentences_per_second": round(offline_rate, 2), "batched": batched,
            "wall_seconds": round(time.monotonic() - wall, 1)})
        print(f"wrote {path}")
        return
    unbatched = load_run(args, sentences, expected, 1)
    record = {
        "benchmark": "serve_load", "command": "python " + " ".join(sys.argv), "commit": git_commit(),
        "machine": machine(), "model_dir": args.model_dir, "decode": str(decode), "client_nice": args.client_nice,
        "clients": args.clients, "duration_s": args.duration, "threads": args.threads,
        "offline_sentences_per_second": round(offline_rate, 2),
        "offline_sentences_per_cpu_second": round(len(sentences) / offline_cpu, 2),
        "batched": batched, "unbatched": unbatched,
        "batched_over_unbatched": round(batched["sentences_per_second"] / unbatched["sentences_per_second"], 2),
        "served_over_offline": round(batched["sentences_per_second"] / offline_rate, 2),
        # the same per CPU-second of the decoding thread: what serving costs beyond decoding, whatever the load
        "served_over_offline_per_cpu_second": round(
            batched["sentences_per_worker_cpu_second"] / (len(sentences) / offline_cpu), 2),
        "goals": {"batched_over_unbatched": ">= 4", "served_over_offline": ">= 0.8", "errors": 0,
                  "rss_growth": "< 0.10"},
        "wall_seconds": round(time.monotonic() - wall, 1)}
    path = write_result("serve_load", record)
    print(f"batched / unbatched = {record['batched_over_unbatched']}x, served / offline = "
          f"{record['served_over_offline']}x; wrote {path}")


if __name__ == "__main__":
    main()
