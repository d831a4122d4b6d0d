"""``seqlab serve``'s API through an in-process client: every endpoint, the CLI's outputs, every error class, the
API key, metrics, and dynamic batching that never changes an answer."""

import concurrent.futures
import json

import pytest
from fastapi.testclient import TestClient

from seqlab.serve.app import ServeSettings, create_app
from seqlab.serve.models import ServedModel
from seqlab.tasks import load_model_dir
from tests.integration.test_cli import PAIRS, corpus, seqlab, trained  # noqa: F401 (fixtures)
from tests.integration.test_lm_cli import lm_dir  # noqa: F401 (fixture)

SOURCES = [source for source, _ in PAIRS]


def make_client(model_dirs, **settings) -> TestClient:
    models = [ServedModel(name, directory, load_model_dir(directory)) for name, directory in model_dirs.items()]
    return TestClient(create_app(models, ServeSettings(**settings)))


@pytest.fixture(scope="module")
def client(trained, lm_dir):
    with make_client({"fr": trained, "lm": lm_dir}, max_texts=16, max_chars=400, max_body_bytes=4000) as client:
        yield client


def cli_lines(trained, tmp_path, *options) -> list[str]:
    source = tmp_path / "in.txt"
    source.write_text("".join(line + "\n" for line in SOURCES), encoding="utf-8")
    result = seqlab("translate", trained, "-i", source, *options)
    assert result.returncode == 0, result.stderr
    return result.stdout.splitlines()


def test_translate_gives_what_the_cli_prints(client, trained, tmp_path):
    response = client.post("/v1/translate", json={"texts": SOURCES})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["model"] == "fr" and body["elapsed_ms"] >= 0
    assert [t["text"] for t in body["translations"]] == cli_lines(trained, tmp_path)
    beam = client.post("/v1/translate", json={"texts": SOURCES, "beam": 3, "nbest": 2, "alpha": 0.5}).json()
    cli = [line.split("\t") for line in cli_lines(trained, tmp_path, "--beam", "3", "--nbest", "2", "--alpha", "0.5")]
    for translation, fields in zip(beam["translations"], cli):
        assert [h["text"] for h in translation["nbest"]] == fields[0::2]
        assert [f"{h['score']:.4f}" for h in translation["nbest"]] == fields[1::2]


def test_translate_returns_the_attention_of_the_chosen_hypothesis(client):
    translation = client.post("/v1/translate", json={"texts": ["i am cold ."], "attention": True}).json()[
        "translations"][0]
    weights = translation["attention"]
    assert len(weights) == len(translation["tokens"])  # one row per output token
    assert all(len(row) == len(translation["src_tokens"]) + 1 for row in weights)  # source tokens and <eos>
    assert all(sum(row) == pytest.approx(1.0, abs=1e-2) for row in weights)
    beam = client.post("/v1/translate", json={"texts": ["i am cold ."], "beam": 3, "nbest": 3,
                                              "attention": True}).json()["translations"][0]
    assert beam["nbest"][0]["attention"] == beam["attention"] and beam["nbest"][0]["tokens"] == beam["tokens"]
    for hypothesis in beam["nbest"]:  # each hypothesis carries its own tokens and attention rows
        assert len(hypothesis["attention"]) == len(hypothesis["tokens"])


def test_a_sentences_output_does_not_depend_on_its_batch(client):
    alone = [client.post("/v1/translate", json={"texts": [s], "beam": 2}).json()["translations"][0]
             for s in SOURCES]
    together = client.post("/v1/translate", json={"texts": SOURCES, "beam": 2}).json()["translations"]
    with concurrent.futures.ThreadPoolExecutor(8) as pool:  # concurrent requests, batched by the worker
        concurrent_ = list(pool.map(lambda s: client.post("/v1/translate", json={"texts": [s], "beam": 2}).json()
                                    ["translations"][0], SOURCES * 2))
    for a, b, c, d in zip(alone, together, concurrent_, concurrent_[len(SOURCES):]):
        assert a["text"] == b["text"] == c["text"] == d["text"]
        assert a["score"] == pytest.approx(b["score"], abs=1e-3) and a["score"] == pytest.approx(c["score"], abs=1e-3)
    metrics = client.get("/metrics").text
    batches = [line for line in metrics.splitlines() if line.startswith("seqlab_batch_sentences_count")]
    sentences = [line for line in metrics.splitlines() if line.startswith("seqlab_batch_sentences_sum")]
    assert batches and float(sentences[0].split()[-1]) > float(batches[0].split()[-1])  # some batches held > 1


def test_sampling_is_seeded_per_request(client):
    request = {"texts": ["i am cold .", "he is calm ."], "sample": True, "seed": 3, "temperature": 1.5}
    first, second = (client.post("/v1/translate", json=request).json()["translations"] for _ in range(2))
    assert [t["text"] for t in first] == [t["text"] for t in second]


def test_generate_and_score_with_a_language_model(client, lm_dir):
    generated = client.post("/v1/generate", json={"prompts": ["i think"], "max_tokens": 5}).json()
    cli = seqlab("generate", lm_dir, "--prompt", "i think", "--max-tokens", "5").stdout.strip()
    assert generated["generations"][0]["text"] == cli and generated["model"] == "lm"
    scores = client.post("/v1/score", json={"texts": ["to recognize speech is hard", "to wreck a nice beach"]})
    assert scores.status_code == 200, scores.text
    first, second = scores.json()["scores"]
    assert first["log_prob"] > second["log_prob"] and first["log_base"] == "e"
    forced = client.post("/v1/score", json={"model": "fr", "pairs": [["go .", "va !"]]}).json()["scores"][0]
    assert forced["log_prob"] < 0 and forced["tokens"] >= 2


def test_models_health_and_metrics(client):
    listed = {m["name"]: m for m in client.get("/v1/models").json()["models"]}
    assert listed["fr"]["task"] == "translation" and listed["lm"]["task"] == "lm"
    assert listed["fr"]["parameters"] > 0 and listed["fr"]["vocabulary_sizes"]["tgt"] > 4
    assert "bleu" in listed["fr"]["training"]
    assert client.get("/healthz").json() == {"status": "ok", "models": ["fr", "lm"]}
    metrics = client.get("/metrics").text
    for name in ("seqlab_requests_total", "seqlab_request_seconds_bucket", "seqlab_batch_sentences_bucket",
                 "seqlab_queue_depth", "seqlab_request_errors_total"):
        assert name in metrics, name


@pytest.mark.parametrize("body, status, field", [
    ('{"texts": ["go ."', 400, "malformed JSON"),
    ({"texts": ["go ."], "beams": 3}, 422, "beams"),
    ({"texts": "go ."}, 422, "texts"),
    ({"texts": ["go ."], "beam": "5"}, 422, "beam"),
    ({"texts": ["go ."], "beam": 0}, 422, "beam"),
    ({"texts": ["go ."], "beam": 65}, 422, "beam"),
    ({"texts": ["go ."], "top_p": 0.0}, 422, "top_p"),
    ({"texts": ["go ."], "max_len": -1}, 422, "max_len"),
    ({"texts": ["go ."], "beam": 2, "nbest": 3}, 422, "nbest"),
    ({"texts": []}, 422, "texts"),
    ({"texts": ["go ."] * 17}, 413, "texts"),
    ({"texts": ["go . " * 90]}, 413, "characters"),
    ({"texts": ["x" * 5000]}, 413, "body"),
    ({"texts": ["go ."], "model": "nope"}, 404, "model"),
    ({"texts": ["go ."], "model": "lm"}, 422, "model"),
])
def test_bad_requests_get_one_line_json_errors(client, body, status, field):
    if isinstance(body, str):
        response = client.post("/v1/translate", content=body, headers={"Content-Type": "application/json"})
    else:
        response = client.post("/v1/translate", json=body)
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert field in error and "\n" not in error and "Traceback" not in error


def test_a_bad_request_does_not_disturb_its_neighbours(client):
    good = {"texts": ["i am cold ."]}
    bad = {"texts": ["go ."], "beam": 2, "nbest": 5}
    with concurrent.futures.ThreadPoolExecutor(6) as pool:
        responses = list(pool.map(lambda b: client.post("/v1/translate", json=b), [good, bad] * 6))
    assert [r.status_code for r in responses] == [200, 422] * 6
    assert {r.json()["translations"][0]["text"] for r in responses[0::2]} == {"j'ai froid."}


def test_an_api_key_guards_the_api_but_not_the_page(trained, tmp_path):
    with make_client({"fr": trained}, api_key="s3cret-key") as client:
        assert client.post("/v1/translate", json={"texts": ["go ."]}).status_code == 401
        assert "API key" in client.get("/v1/models").json()["error"]
        wrong = client.post("/v1/translate", json={"texts": ["go ."]}, headers={"X-API-Key": "nope-nope"})
        assert wrong.status_code == 401
        ok = client.post("/v1/translate", json={"texts": ["go ."]}, headers={"Authorization": "Bearer s3cret-key"})
        assert ok.status_code == 200 and ok.json()["translations"][0]["text"]
        assert client.get("/").status_code == 200 and client.get("/healthz").status_code == 200
        # refusals by the key check (outside FastAPI) are counted like any other answer
        metrics = client.get("/metrics", headers={"X-API-Key": "s3cret-key"}).text
        assert 'seqlab_requests_total{endpoint="/v1/translate",status="401"} 2.0' in metrics
        assert 'seqlab_requests_total{endpoint="/v1/translate",status="200"} 1.0' in metrics
        assert 'seqlab_request_errors_total{endpoint="/v1/models"} 1.0' in metrics


def test_the_page_and_its_files_come_from_the_package(client):
    page = client.get("/")
    assert page.status_code == 200 and 'id="run"' in page.text and "/static/app.js" in page.text
    assert "drawHeatmap" in client.get("/static/app.js").text
    assert "http" not in client.get("/static/app.js").text.replace("http://www.w3.org/2000/svg", "")  # no CDN
    assert client.get("/static/../seqlab.py").status_code == 404
