"""The HTTP side of `intentfusion-serve`: request parsing (`parse_body`) and the FastAPI app (`create_app`).

The endpoints are described in `intentfusion.inference.serve`; the page is `static/index.html` of this package
(`intentfusion.inference`, shipped as package data).

Why FastAPI + uvicorn and not Gradio: the two add ~1 MB of pure-Python packages on top of what the project
already has (pydantic, starlette's deps) and install in ~3 s, against Gradio's ~100 MB tree (pandas, ffmpy,
gradio-client, a bundled frontend); the page is one file we control (so the browser test can find its
elements), the JSON API is an ordinary endpoint, and `fastapi.testclient.TestClient` tests it in-process.
"""

from __future__ import annotations

import json
from importlib import resources
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse
from starlette.concurrency import run_in_threadpool

from intentfusion.inference.predictor import Predictor
from intentfusion.utils.rounding import rounded

EXAMPLES = [
    {"kind": "typos", "text": "wher is my oder?? its been 2 weeks allready"},
    {"kind": "ALL CAPS", "text": "I WAS CHARGED TWICE AND NOBODY ANSWERS. FIX THIS NOW"},
    {"kind": "slang", "text": "yo my acct got locked lol cant log in smh"},
    {"kind": "es", "text": "Quiero cancelar mi suscripción, por favor"},
    {"kind": "de", "text": "Mein Paket ist immer noch nicht angekommen, das ist inakzeptabel!"},
    {"kind": "fr", "text": "Bonjour, je voudrais un remboursement pour ma commande"},
    {"kind": "emoji", "text": "the app keeps crashing when I pay 😡😡"},
    {"kind": "vague", "text": "it doesn't work"},
]
_JSON_TYPES = {dict: "object", list: "array", str: "string", bool: "boolean", int: "number", float: "number"}


class RequestError(Exception):
    """A bad request: HTTP status + a message naming the problem."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status, self.detail = status, detail


def _type_name(value: Any) -> str:
    return "null" if value is None else _JSON_TYPES.get(type(value), type(value).__name__)


def parse_body(body: bytes, content_type: str | None, max_texts: int) -> tuple[list[str], bool]:
    """(texts, return_distribution) from a raw request body, or a `RequestError` naming the problem."""
    if content_type and "json" not in content_type.split(";")[0].lower():
        raise RequestError(415, f"Content-Type must be application/json, got {content_type.split(';')[0]!r}")
    try:
        data = json.loads(body.decode("utf-8"))
    except UnicodeDecodeError as e:
        raise RequestError(400, f"body is not UTF-8: {e.reason} at byte {e.start}") from None
    except json.JSONDecodeError as e:
        raise RequestError(400, f"body is not valid JSON: {e.msg} (line {e.lineno}, column {e.colno})") from None
    if not isinstance(data, dict):
        raise RequestError(422, f"body must be a JSON object with 'texts' (a list of strings) or 'text' (a string), "
                                f"got {_type_name(data)}")
    unknown = sorted(set(data) - {"text", "texts", "return_distribution"})
    if unknown:
        raise RequestError(422, f"unknown field(s) {unknown}; expected 'texts' or 'text' (+ 'return_distribution')")
    if ("text" in data) == ("texts" in data):
        raise RequestError(422, "give exactly one of 'texts' (a list of strings) or 'text' (a string)")
    distribution = data.get("return_distribution", False)
    if not isinstance(distribution, bool):
        raise RequestError(422, f"'return_distribution' must be a boolean, got {_type_name(distribution)}")
    if "text" in data:
        if not isinstance(data["text"], str):
            raise RequestError(422, f"'text' must be a string, got {_type_name(data['text'])}")
        return [data["text"]], distribution
    texts = data["texts"]
    if not isinstance(texts, list):
        raise RequestError(422, f"'texts' must be a list of strings, got {_type_name(texts)}")
    if len(texts) > max_texts:
        raise RequestError(413, f"too many texts: {len(texts)} > {max_texts} per request")
    for i, text in enumerate(texts):
        if not isinstance(text, str):
            raise RequestError(422, f"texts[{i}] must be a string, got {_type_name(text)}")
    return texts, distribution


def create_app(predictor: Predictor, *, max_body_bytes: int = 256 * 1024, max_texts: int = 256,
               examples: list[dict[str, str]] | None = None) -> FastAPI:
    """The FastAPI app serving `predictor` (endpoints: see `intentfusion.inference.serve`)."""
    app = FastAPI(title="intentfusion", docs_url=None, redoc_url=None, openapi_url=None)
    page = resources.files("intentfusion.inference").joinpath("static/index.html").read_text(encoding="utf-8")
    meta = {
        "tasks": predictor.tasks,
        "label_names": predictor.label_names,
        "task_types": predictor.task_types,
        "examples": EXAMPLES if examples is None else examples,
        "limits": {"max_body_bytes": max_body_bytes, "max_texts": max_texts},
        "fallbacks": predictor.fallbacks,
        "model": {k: v for k, v in predictor.info.items() if k in ("backbone", "runtime", "format", "precision",
                                                                     "max_length")},
    }

    @app.get("/", response_class=HTMLResponse)
    def index() -> HTMLResponse:
        return HTMLResponse(page)

    @app.get("/api/info")
    def api_info() -> dict[str, Any]:
        return meta

    @app.get("/healthz")
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.post("/predict")
    async def predict(request: Request) -> JSONResponse:
        try:
            declared = request.headers.get("content-length", "")
            if declared.isdigit() and int(declared) > max_body_bytes:
                raise RequestError(413, f"request body too large: {declared} bytes > {max_body_bytes}")
            body = bytearray()
            async for chunk in request.stream():
                body += chunk
                if len(body) > max_body_bytes:
                    raise RequestError(413, f"request body too large: over {max_body_bytes} bytes")
            texts, distribution = parse_body(bytes(body), request.headers.get("content-type"), max_texts)
        except RequestError as e:
            return JSONResponse({"detail": e.detail}, status_code=e.status)
        results = await run_in_threadpool(predictor.predict, texts, distribution)
        return JSONResponse({"results": rounded(results)})

    return app
