"""``seqlab serve`` as a process: it starts from the one command, survives kill -9 while requests are in flight
(restarted, it answers correctly; the model directory is only read), stops cleanly on SIGTERM, and refuses to
listen beyond loopback without a key.  And the page, in a real headless Chromium."""

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

from tests.integration.test_cli import ROOT, assert_clean_error, corpus, seqlab, trained  # noqa: F401 (fixtures)

ARTEFACTS = ROOT / "tests" / "artefacts"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start(model_dir: Path, port: int, *options: str) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    process = subprocess.Popen([sys.executable, "-m", "seqlab", "serve", str(model_dir), "--port", str(port),
                                *options], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"seqlab serve exited with {process.returncode}: {process.stderr.read()}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return process
        except httpx.HTTPError:
            time.sleep(0.2)
    process.kill()
    raise AssertionError("seqlab serve did not answer /healthz within 60 s")


def snapshot(directory: Path) -> dict[str, tuple[int, int]]:
    return {p.name: (p.stat().st_size, p.stat().st_mtime_ns) for p in sorted(directory.iterdir())}


def test_killed_while_busy_then_restarted_it_answers_correctly(trained):
    before = snapshot(trained)
    port = free_port()
    url = f"http://127.0.0.1:{port}/v1/translate"
    process = start(trained, port)
    expected = httpx.post(url, json={"texts": ["i am cold ."]}, timeout=30).json()["translations"][0]["text"]
    errors = []

    def hammer() -> None:
        try:
            httpx.post(url, json={"texts": ["i am cold ."] * 16, "beam": 4}, timeout=30)
        except httpx.HTTPError as error:  # the server dies under it: expected
            errors.append(error)

    clients = [threading.Thread(target=hammer) for _ in range(8)]
    for client in clients:
        client.start()
    time.sleep(0.3)
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=10)
    for client in clients:
        client.join()
    process = start(trained, port)
    try:
        again = httpx.post(url, json={"texts": ["i am cold ."]}, timeout=30).json()["translations"][0]["text"]
        assert again == expected == "j'ai froid."
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=30)
    assert snapshot(trained) == before  # nothing written beside the model


def test_sigterm_finishes_in_flight_requests_then_exits_0(trained):
    port = free_port()
    process = start(trained, port, "--max-wait-ms", "300")  # requests wait in the queue long enough to be in flight
    results = []

    def request() -> None:
        results.append(httpx.post(f"http://127.0.0.1:{port}/v1/translate", json={"texts": ["he is calm ."]},
                                  timeout=30))

    thread = threading.Thread(target=request)
    thread.start()
    time.sleep(0.15)
    process.send_signal(signal.SIGTERM)
    thread.join()
    assert process.wait(timeout=30) == 0, process.stderr.read()
    assert results and results[0].status_code == 200 and results[0].json()["translations"][0]["text"]


def test_another_host_needs_a_key_or_insecure(trained, tmp_path):
    assert_clean_error(seqlab("serve", trained, "--host", "0.0.0.0"), "--api-key-file")
    assert_clean_error(seqlab("serve", trained, "--api-key-file", tmp_path / "absent"), "absent: no such file")
    assert_clean_error(seqlab("serve", trained, "--max-batch-sentences", "0"), "--max-batch-sentences")
    assert_clean_error(seqlab("serve", tmp_path / "nothing"), "nothing")


def test_insecure_serving_warns_in_the_banner_and_int8_serves(trained):
    port = free_port()
    process = start(trained, port, "--host", "0.0.0.0", "--insecure", "--quantize", "int8")
    answer = httpx.post(f"http://127.0.0.1:{port}/v1/translate", json={"texts": ["i am cold ."]}, timeout=30)
    assert answer.status_code == 200 and answer.json()["translations"][0]["text"] == "j'ai froid."
    process.send_signal(signal.SIGTERM)
    _, err = process.communicate(timeout=30)
    assert process.returncode == 0 and "WARNING: --insecure" in err


def test_the_page_shows_the_translation_and_its_attention_in_chromium(trained):
    from selenium import webdriver
    from selenium.common.exceptions import WebDriverException
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions
    from selenium.webdriver.support.ui import WebDriverWait

    port = free_port()
    process = start(trained, port)
    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--window-size=1200,800"):
        options.add_argument(flag)
    try:
        try:
            driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)
        except WebDriverException as error:  # a failure, with one line saying why: not a skip
            pytest.fail(f"headless Chromium could not start: {str(error).splitlines()[0]}")
        try:
            driver.get(f"http://127.0.0.1:{port}/")
            wait = WebDriverWait(driver, 30)
            wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "#model option"))
            driver.find_element(By.ID, "text").send_keys("i am cold .")
            driver.find_element(By.ID, "beam").clear()
            driver.find_element(By.ID, "beam").send_keys("3")
            driver.find_element(By.ID, "run").click()
            wait.until(expected_conditions.text_to_be_present_in_element((By.ID, "output"), "froid"))
            api = httpx.post(f"http://127.0.0.1:{port}/v1/translate",
                             json={"texts": ["i am cold ."], "beam": 3, "nbest": 3, "attention": True}).json()
            shown = api["translations"][0]
            assert driver.find_element(By.ID, "output").text == shown["text"]
            hypotheses = driver.find_elements(By.CSS_SELECTOR, "#nbest-list li")
            assert len(hypotheses) == len(shown["nbest"])
            assert f"{shown['nbest'][0]['score']:.4f}" in hypotheses[0].text
            svg = driver.find_element(By.CSS_SELECTOR, "#heatmap svg")
            rows, cols = len(shown["attention"]), len(shown["attention"][0])
            assert (int(svg.get_attribute("data-rows")), int(svg.get_attribute("data-cols"))) == (rows, cols)
            assert len(driver.find_elements(By.CSS_SELECTOR, "#heatmap rect.cell")) == rows * cols
            hypotheses[1].click()  # another hypothesis: its own text and its own attention
            second = shown["nbest"][1]
            assert driver.find_element(By.ID, "output").text == second["text"]
            svg = driver.find_element(By.CSS_SELECTOR, "#heatmap svg")
            assert int(svg.get_attribute("data-rows")) == len(second["attention"])
            ARTEFACTS.mkdir(exist_ok=True)
            driver.save_screenshot(str(ARTEFACTS / "serve_page.png"))
        finally:
            driver.quit()
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=30)
