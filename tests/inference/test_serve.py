"""`intentfusion.inference.serve` / `.app` (`python -m intentfusion.serve`, `intentfusion-serve`): the JSON endpoint
(good and bad bodies), the CLI's errors (one line, exit code 1), a real uvicorn server on 127.0.0.1, and the demo page
driven in headless Chromium (skipped when chromium / chromedriver / selenium are absent)."""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
import pytest
import torch
from fastapi.testclient import TestClient

from intentfusion.inference import Predictor
from intentfusion.inference.app import EXAMPLES, create_app
from intentfusion.inference.serve import main

from .test_predictor import best_checkpoint

CHROMIUM, CHROMEDRIVER = shutil.which("chromium"), shutil.which("chromedriver")
HAS_BROWSER = bool(CHROMIUM and CHROMEDRIVER and importlib.util.find_spec("selenium"))
FALLBACKS = {"action": {"threshold": 0.55, "fallback": "request_more_info"}}


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny model, busy 2-core machine: threads only cost
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def predictor(tiny_run) -> Predictor:
    return Predictor.from_checkpoint(best_checkpoint(tiny_run), fallbacks=FALLBACKS)


@pytest.fixture(scope="module")
def client(predictor) -> TestClient:
    return TestClient(create_app(predictor, max_body_bytes=4096, max_texts=8))


# ================================================================================= JSON API
def test_page_info_and_health(client, predictor) -> None:
    page = client.get("/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert 'id="message"' in page.text and 'id="classify"' in page.text
    assert not re.search(r'(src|href)="(https?:)?//', page.text)  # no external assets: works offline
    info = client.get("/api/info").json()
    assert info["tasks"] == predictor.tasks and info["examples"] == EXAMPLES
    assert {e["kind"] for e in EXAMPLES} >= {"typos", "ALL CAPS", "slang", "es", "de", "fr"}
    assert client.get("/healthz").json() == {"status": "ok"}


def test_predict_accepts_texts_or_text(client, predictor) -> None:
    texts = ["where is my order??", "CANCEL MY ACCOUNT", ""]
    response = client.post("/predict", json={"texts": texts})
    assert response.status_code == 200
    results = response.json()["results"]
    expected = predictor.predict(texts)
    assert [{t: p["label"] for t, p in r["predictions"].items()} for r in results] == [
        {t: p["label"] for t, p in r["predictions"].items()} for r in expected]
    assert results[2]["flags"] == ["empty"] and results[2]["predictions"]["action"]["label"] == "request_more_info"
    assert results[0]["predictions"]["intent"]["confidence"] == pytest.approx(
        expected[0]["predictions"]["intent"]["confidence"], abs=1e-4)
    one = client.post("/predict", json={"text": "refund please", "return_distribution": True}).json()["results"]
    assert len(one) == 1 and set(one[0]["predictions"]["sentiment"]["distribution"]) == set(
        predictor.label_names["sentiment"])
    assert client.post("/predict", json={"texts": []}).json() == {"results": []}


@pytest.mark.parametrize(
    ("kwargs", "status", "detail"),
    [
        ({"content": b"{not json", "headers": {"content-type": "application/json"}}, 400, "not valid JSON"),
        ({"content": b"\xff\xfe", "headers": {"content-type": "application/json"}}, 400, "not UTF-8"),
        ({"json": ["a", "b"]}, 422, "must be a JSON object"),
        ({"json": {}}, 422, "exactly one of 'texts'"),
        ({"json": {"text": "a", "texts": ["b"]}}, 422, "exactly one of 'texts'"),
        ({"json": {"texts": "a"}}, 422, "'texts' must be a list of strings, got string"),
        ({"json": {"texts": ["a", 3]}}, 422, "texts[1] must be a string, got number"),
        ({"json": {"texts": ["a", None]}}, 422, "texts[1] must be a string, got null"),
        ({"json": {"text": {"x": 1}}}, 422, "'text' must be a string, got object"),
        ({"json": {"text": "a", "lang": "en"}}, 422, "unknown field(s) ['lang']"),
        ({"json": {"text": "a", "return_distribution": "yes"}}, 422, "'return_distribution' must be a boolean"),
        ({"json": {"texts": ["a"] * 9}}, 413, "too many texts: 9 > 8"),
        ({"json": {"text": "a" * 5000}}, 413, "request body too large"),
        ({"content": b"text=a", "headers": {"content-type": "application/x-www-form-urlencoded"}}, 415,
         "must be application/json"),
    ],
)
def test_bad_bodies_get_a_4xx_naming_the_problem(client, kwargs, status, detail) -> None:
    response = client.post("/predict", **kwargs)
    assert response.status_code == status
    assert detail in response.json()["detail"]


def test_streamed_body_over_the_limit_is_cut_off(client) -> None:
    def chunks():  # no Content-Length: the limit is enforced while reading
        yield b'{"text": "'
        for _ in range(10):
            yield b"a" * 1000
        yield b'"}'

    response = client.post("/predict", content=chunks(), headers={"content-type": "application/json"})
    assert response.status_code == 413 and "request body too large" in response.json()["detail"]


def fails(capsys, *args: str) -> str:
    """`main(args)` ends the process with exit code 1 and one `error:` line on stderr; returns that line."""
    with pytest.raises(SystemExit) as exited:
        main(list(args))
    err = capsys.readouterr().err
    assert exited.value.code == 1 and err.startswith("error: ") and err.count("\n") == 1, err
    return err


def test_cli_rejects_bad_options(capsys, tmp_path) -> None:
    assert "exactly one of export_dir=DIR or ckpt_path=FILE" in fails(capsys, "port=1")
    err = fails(capsys, "export_dir=/nonexistent", "prot=1")
    assert err.startswith("error: prot: unknown option; expected one of [") and "'port'" in err
    assert "error: port=http: str value; expected an integer" in fails(capsys, "export_dir=/nonexistent", "port=http")
    missing = tmp_path / "missing_export"
    assert f"error: export_dir={missing}: no such export directory" in fails(capsys, f"export_dir={missing}")
    missing = tmp_path / "missing.ckpt"
    assert f"error: ckpt_path={missing}: no such checkpoint file" in fails(capsys, f"ckpt_path={missing}")
    assert main(["help"]) == 0 and "`POST /predict`" in capsys.readouterr().out


def test_python_m_intentfusion_serve_reports_a_missing_export_in_one_line(tmp_path) -> None:
    missing = tmp_path / "missing_export"
    done = subprocess.run([sys.executable, "-m", "intentfusion.serve", f"export_dir={missing}"], capture_output=True,
                          text=True, timeout=120, env={**os.environ, "HF_HUB_OFFLINE": "1"})
    assert done.returncode == 1 and done.stderr.startswith(f"error: export_dir={missing}: no such export directory")
    assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr, done.stderr[-3000:]


# ================================================================================= real server, real browser
@pytest.fixture(scope="module")
def server(predictor):
    """uvicorn on 127.0.0.1 with an OS-chosen free port (the socket is bound before the server starts)."""
    import uvicorn

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    uv = uvicorn.Server(uvicorn.Config(create_app(predictor), log_level="warning"))
    thread = threading.Thread(target=uv.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not uv.started:
        assert time.monotonic() < deadline and thread.is_alive(), "uvicorn did not start"
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    uv.should_exit = True
    thread.join(10)
    sock.close()


def test_json_endpoint_over_loopback(server, predictor) -> None:
    with httpx.Client(base_url=server, timeout=30) as http:
        ok = http.post("/predict", json={"texts": ["my card was charged twice", "hola"]})
        assert ok.status_code == 200 and len(ok.json()["results"]) == 2
        bad = http.post("/predict", content=b"[", headers={"content-type": "application/json"})
        assert bad.status_code == 400 and "not valid JSON" in bad.json()["detail"]


ROUTES = {"escalate_to_human": "escalate", "request_more_info": "request", "auto_resolve": "auto"}


@pytest.mark.skipif(not HAS_BROWSER, reason="needs chromium + chromedriver (apt) and selenium (pip)")
def test_demo_page_in_headless_chromium(server, predictor, tmp_path) -> None:
    from selenium import webdriver
    from selenium.common.exceptions import StaleElementReferenceException
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    options = Options()
    options.binary_location = CHROMIUM  # with the driver path below, selenium never looks for a browser download
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--disable-dev-shm-usage", "--window-size=1000,1300", "--hide-scrollbars",
                 f"--user-data-dir={tempfile.mkdtemp(dir=tmp_path)}"):
        options.add_argument(flag)
    driver = webdriver.Chrome(options=options, service=Service(executable_path=CHROMEDRIVER))
    try:
        # a poll that lands while the page re-renders its result cards sees them go stale: poll again
        wait = WebDriverWait(driver, 30, ignored_exceptions=(StaleElementReferenceException,))
        driver.get(server + "/")
        wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "button.example")) == len(EXAMPLES))
        message = "I WAS CHARGED TWICE for my order, refund me now!! 😡"
        driver.find_element(By.ID, "message").send_keys(message)
        driver.find_element(By.ID, "classify").click()

        def rendered() -> dict[str, str]:
            return {card.get_attribute("data-task"): card.find_element(By.CSS_SELECTOR, ".label")
                    .get_attribute("data-label") for card in driver.find_elements(By.CSS_SELECTOR, ".task")}

        expected = predictor.predict_one(message)["predictions"]
        wait.until(lambda d: rendered() == {task: p["label"] for task, p in expected.items()})
        route = driver.find_element(By.ID, "route")
        assert route.get_attribute("data-route") == ROUTES[expected["action"]["label"]]
        assert "Recommended action" in route.text
        bars = driver.find_elements(By.CSS_SELECTOR, ".task[data-task='sentiment'] .bar")
        assert len(bars) == len(predictor.label_names["sentiment"])  # the distribution is drawn
        driver.save_screenshot(str(tmp_path / "demo.png"))

        # an example message replaces the text and re-classifies
        example = EXAMPLES[3]
        driver.find_elements(By.CSS_SELECTOR, "button.example")[3].click()
        wanted = {task: p["label"] for task, p in predictor.predict_one(example["text"])["predictions"].items()}
        wait.until(lambda d: rendered() == wanted)
        assert driver.find_element(By.ID, "message").get_attribute("value") == example["text"]
        assert driver.find_element(By.ID, "error").get_attribute("hidden") is not None
    finally:
        driver.quit()
    shot = tmp_path / "demo.png"
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 20_000
    if os.environ.get("INTENTFUSION_DEMO_SCREENSHOT"):  # e.g. docs/demo.png, to refresh the README picture
        shutil.copy(shot, Path(os.environ["INTENTFUSION_DEMO_SCREENSHOT"]))
    print(json.dumps({"screenshot": str(shot)}))
