"""The other tasks behind the same server: classification, tagging and captioning answer as their CLI verbs do."""

import base64

import pytest
from fastapi.testclient import TestClient

from seqlab.commands import caption
from seqlab.serve.app import ServeSettings, create_app
from seqlab.serve.models import ServedModel
from seqlab.tasks import load_model_dir
from tests.conftest import flickr, invoke  # noqa: F401 (fixture)
from tests.integration.test_caption_forecast_cli import caption_model  # noqa: F401 (fixture)
from tests.integration.test_classify_tag_cli import (classifier_dir, classify_files, registered,  # noqa: F401
                                                     tagger_dir)


@pytest.fixture(scope="module")
def client(classifier_dir, tagger_dir, caption_model):
    models = [ServedModel(name, directory, load_model_dir(directory)) for name, directory in
              (("polarity", classifier_dir), ("chunks", tagger_dir / "model"), ("captions", caption_model))]
    with TestClient(create_app(models, ServeSettings())) as client:
        yield client


def test_classify_and_tag(client):
    labels = client.post("/v1/classify", json={"texts": ["good film", "the plot was bad"]}).json()
    assert [r["label"] for r in labels["labels"]] == ["pos", "neg"] and labels["model"] == "polarity"
    tagged = client.post("/v1/tag", json={"texts": ["the cat sat on the mat ."]}).json()["tagged"][0]
    assert tagged["tokens"] == "the cat sat on the mat .".split()
    assert tagged["tags"][:2] == ["B-NP", "I-NP"] and len(tagged["tags"]) == 7


def test_caption_an_uploaded_image_as_the_cli_does(client, caption_model, flickr, capsys):
    images = [flickr / "red.jpg", flickr / "blue.jpg"]
    encoded = [base64.b64encode(path.read_bytes()).decode() for path in images]
    served = client.post("/v1/caption", json={"images": encoded}).json()["captions"]
    code, out, _ = invoke(caption, ["predict", str(caption_model), *map(str, images)], capsys)
    assert code == 0 and [r["text"] for r in served] == [line.split("\t")[1] for line in out.splitlines()]
    bad = client.post("/v1/caption", json={"images": ["bm90IGFuIGltYWdl"]})  # "not an image"
    assert bad.status_code == 422 and "images.0: not a readable image" in bad.json()["error"]
    assert client.post("/v1/caption", json={"images": ["%%%"]}).json()["error"] == "images.0: not base64"


def test_an_endpoint_without_a_model_of_its_task_says_so(client):
    response = client.post("/v1/translate", json={"texts": ["go ."]})
    assert response.status_code == 404 and "no translation model is served" in response.json()["error"]
    wrong = client.post("/v1/tag", json={"texts": ["go ."], "model": "polarity"})
    assert wrong.status_code == 422 and "classification model" in wrong.json()["error"]
