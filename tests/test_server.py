"""``textdrop serve``: a real uvicorn server on a free loopback port, called with a real HTTP client.

Servers run in a thread of the test process (:func:`textdrop.server.run.make_server`, the tray's path), so
the engines registered here (``fake``, ``slow``, ``options``) are the ones they run; the token test runs
``textdrop serve`` as a process of its own. Timing-dependent tests hold the ``slow`` engine on a gate
(:attr:`SlowEngine.gate`) instead of sleeping. Every request goes to 127.0.0.1.
"""

from __future__ import annotations

import base64
import io
import logging
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, ClassVar

import httpx
import pytest
from httpx_sse import connect_sse
from PIL import Image

from tests.conftest import write_config
from tests.helpers.badfiles import write_bomb_png, write_pdf, write_text_as_image
from tests.helpers.fake_engines import FakeEngine, SlowEngine, fake_text
from textdrop.cli import run
from textdrop.engine import registry
from textdrop.engine.documents.sources import SourceLimits, open_source
from textdrop.engine.errors import TextdropError, UsageError
from textdrop.engine.jobs import Job, JobQueue
from textdrop.engine.registry import RecognizeOptions
from textdrop.engine.result import PageResult
from textdrop.server.options import ServerOptions
from textdrop.server.run import ApiServer, make_server, start_in_background
from textdrop.settings import Settings

REPO = Path(__file__).resolve().parent.parent
PHOTOTEST = REPO / "assets" / "samples" / "tess_phototest.tif"
WAIT = 60.0  # a hang guard, not a speed target: a loaded 2-core machine needs seconds per page
"""Seconds any single wait may take before the test fails instead of hanging."""


class OptionsEngine(FakeEngine):
    """:class:`FakeEngine` that records the options of every page, and in JSON mode answers
    ``{"fields": [...], "schema": ...}`` as the page's data, so a test sees what reached the engine."""

    name = "options"
    seen: ClassVar[list[RecognizeOptions]] = []

    def recognize_page(self, image: Image.Image, options: RecognizeOptions) -> PageResult:
        type(self).seen.append(options)
        page = super().recognize_page(image, options)
        if options.mode == "json":
            page.data = {"fields": list(options.fields), "schema": options.json_schema}
        return page


@pytest.fixture
def engines(fake_engine: type[FakeEngine], monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """``fake``, ``slow`` and ``options`` in the real registry; the ``slow`` gate opened at teardown."""
    monkeypatch.setitem(registry.BUILTIN_ENGINES, "slow", "tests.helpers.fake_engines:SlowEngine")
    monkeypatch.setitem(registry.BUILTIN_ENGINES, "options", "tests.test_server:OptionsEngine")
    SlowEngine.reset()
    OptionsEngine.seen = []
    yield
    if SlowEngine.gate is not None:
        SlowEngine.gate.set()
    SlowEngine.reset()


@pytest.fixture
def gate(engines: None) -> Iterator[threading.Event]:
    """Hold every ``slow`` page until the test sets the event."""
    event = threading.Event()
    SlowEngine.gate = event
    SlowEngine.delay = 0.0
    yield event
    event.set()


@pytest.fixture
def private_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The process's temp folder (where uploads would spool) moved to an empty folder of the test's."""
    folder = tmp_path / "tmp"
    folder.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(folder))
    return folder


@contextmanager
def serving(
    engine: str = "fake",
    *,
    token: str | None = None,
    limits: SourceLimits | None = None,
    **options: Any,
) -> Iterator[tuple[ApiServer, httpx.Client]]:
    """A started server on 127.0.0.1 and a free port, over a queue of its own; stopped at the end."""
    queue = JobQueue(engine).start()
    server = make_server(
        queue,
        ServerOptions(port=0, **options),
        recognize=RecognizeOptions(),
        limits=limits or SourceLimits(),
        token=token,
        stop_queue=True,
    )
    try:
        server.start()
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        with httpx.Client(base_url=server.url, timeout=WAIT, headers=headers) as client:
            yield server, client
    finally:
        server.stop()
        queue.stop(grace=WAIT)
    assert not server._thread or not server._thread.is_alive(), "the server thread is still running"


def png_bytes(width: int, height: int) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), "white").save(buffer, "PNG")
    return buffer.getvalue()


def upload(client: httpx.Client, data: bytes, **fields: Any) -> httpx.Response:
    """``POST /v1/ocr`` as a multipart upload; list values of ``fields`` are sent comma-separated."""
    form = {k: ",".join(map(str, v)) if isinstance(v, list | tuple) else str(v) for k, v in fields.items()}
    return client.post("/v1/ocr", files={"file": ("upload", data)}, data=form)


def until(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + WAIT
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.01)


def cli_message(data: bytes, limits: SourceLimits | None = None) -> str:
    """The message the CLI prints for these bytes (what open_source raises)."""
    with pytest.raises(TextdropError) as caught, open_source(data, limits) as document:
        list(document.pages())
    return str(caught.value)


# -- results ---------------------------------------------------------------------------------------


@pytest.mark.slow
def test_the_embedded_engine_reads_a_sample_synchronously(
    private_tmp: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)  # above the default level (WARNING): still no document content
    data = PHOTOTEST.read_bytes()
    with serving("rapid") as (_server, client):
        answer = upload(client, data)
        region = client.post(
            "/v1/ocr",
            json={"data": base64.b64encode(data).decode(), "box": [0, 0, 640, 130], "mode": "text"},
        )
    assert answer.status_code == 200, answer.text
    result = answer.json()
    assert "This is a lot of 12 point text to test the" in result["text"]
    assert "lazy fox" in result["markdown"]
    assert result["engine"] == "rapid" and result["warnings"] == []
    (page,) = result["pages"]
    assert page["engine"] == "rapid" and page["number"] == 1 and len(page["lines"]) >= 8
    # box: only the region is read; its lines are in the region's pixels
    assert region.status_code == 200, region.text
    (boxed,) = region.json()["pages"]
    assert (boxed["width"], boxed["height"]) == (640, 130)
    assert "This is a lot of 12 point" in boxed["text"] and "lazy fox" not in boxed["text"]
    assert all(0 <= line["bbox"][2] <= 640 and line["bbox"][3] <= 130 for line in boxed["lines"])
    assert "request: " in caplog.text and "12 point" not in caplog.text and "lazy fox" not in caplog.text


def test_every_mode_and_option_reaches_the_engine(engines: None) -> None:
    data = png_bytes(40, 30)
    schema = {"type": "object", "properties": {"total": {"type": "string"}}}
    with serving("options") as (_server, client):
        markdown = upload(client, data, mode="markdown")
        text = upload(client, data, mode="text", prompt="Read it.")
        fields = upload(client, data, fields=["total", "date"])
        by_schema = client.post(
            "/v1/ocr", json={"data": base64.b64encode(data).decode(), "mode": "json", "schema": schema}
        )
    for response in (markdown, text, fields, by_schema):
        assert response.status_code == 200, response.text
        assert response.json()["markdown"] == fake_text(40, 30)
    modes = [(o.mode, o.prompt, o.fields, o.json_schema) for o in OptionsEngine.seen]
    assert modes == [
        ("markdown", None, (), None),
        ("text", "Read it.", (), None),
        ("json", None, ("total", "date"), None),  # fields imply JSON mode, as on the CLI
        ("json", None, (), schema),
    ]
    assert fields.json()["pages"][0]["data"] == {"fields": ["total", "date"], "schema": None}
    assert by_schema.json()["pages"][0]["data"]["schema"] == schema


def test_box_and_pages_select_what_is_read(engines: None, tmp_path: Path) -> None:
    pdf = write_pdf(tmp_path / "five.pdf", 5).read_bytes()
    with serving() as (_server, client):
        boxed = upload(client, png_bytes(300, 200), box="10,20,110,70")
        clipped = upload(client, png_bytes(300, 200), box=[250, 150, 900, 900])
        pages = upload(client, pdf, pages="2,4-5", box="0,0,50,60")
        outside = upload(client, png_bytes(300, 200), box="400,0,500,10")
    assert boxed.json()["markdown"] == fake_text(100, 50)
    assert clipped.json()["markdown"] == fake_text(50, 50)  # clipped to the page
    assert [p["number"] for p in pages.json()["pages"]] == [2, 4, 5]
    assert FakeEngine.pages == [(100, 50), (50, 50), (50, 60), (50, 60), (50, 60)]
    assert outside.status_code == 422
    assert outside.json()["code"] == "usage" and "lies outside page 1" in outside.json()["message"]


def test_the_cli_reads_a_box_too(
    fake_engine: type[FakeEngine], tmp_path: Path, capsys: Any, textdrop_home: Path
) -> None:
    image = tmp_path / "page.png"
    image.write_bytes(png_bytes(300, 200))
    assert run(["ocr", str(image), "--stdout", "-e", "fake", "--box", "0,0,120,40"]) == 0
    assert capsys.readouterr().out == fake_text(120, 40)
    assert run(["ocr", str(image), "--stdout", "-e", "fake", "--box", "500,0,600,10"]) == 2
    assert "lies outside page 1" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        run(["ocr", str(image), "--box", "1,2,3"])
    assert "four pixel numbers" in capsys.readouterr().err
    write_config(textdrop_home, "[recognize]\nbox = [0, 0, 10, 10]\n")  # per document, never for every file
    assert run(["ocr", str(image), "--stdout", "-e", "fake"]) == 9
    assert "pages and box are chosen per document" in capsys.readouterr().err


# -- jobs ------------------------------------------------------------------------------------------


def test_a_long_pdf_becomes_a_job_with_progress_events(engines: None, tmp_path: Path) -> None:
    SlowEngine.delay = 0.1
    pdf = write_pdf(tmp_path / "six.pdf", 6).read_bytes()
    with serving("slow", sync_pages=4) as (_server, client):
        accepted = upload(client, pdf)
        assert accepted.status_code == 202, accepted.text
        job = accepted.json()
        assert accepted.headers["location"] == job["links"]["self"]
        assert job["pages"] == {"done": 0, "total": 6}
        with connect_sse(client, "GET", job["links"]["events"]) as events:
            received = [(event.event, event.json()) for event in events.iter_sse()]
        final = client.get(job["links"]["self"]).json()
    progress = [body["pages"]["done"] for name, body in received if name == "progress"]
    assert progress == sorted(progress) and any(0 < done < 6 for done in progress), received
    name, last = received[-1]
    assert name == "done" and last["status"] == "done" and last["pages"] == {"done": 6, "total": 6}
    assert [page["number"] for page in last["result"]["pages"]] == [1, 2, 3, 4, 5, 6]
    assert final["result"] == last["result"] and final["error"] is None


def test_deleting_a_job_cancels_it_at_the_next_page(gate: threading.Event, tmp_path: Path) -> None:
    pdf = write_pdf(tmp_path / "six.pdf", 6).read_bytes()
    with serving("slow") as (server, client):
        job = upload(client, pdf, wait="false").json()
        until(lambda: bool(SlowEngine.threads["page"]), "the first page to start")
        assert client.get(job["links"]["self"]).json()["status"] == "running"
        cancelled = client.delete(job["links"]["self"])
        with connect_sse(client, "GET", job["links"]["events"]) as events:
            received = [(event.event, event.json()["status"]) for event in events.iter_sse()]
        gate.set()
        until(lambda: not server.service.queue.busy, "the worker to stop")
        assert client.get(job["links"]["self"]).json()["status"] == "cancelled"
        assert client.get("/v1/jobs/no-such-job").status_code == 404
    assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"
    assert received == [("cancelled", "cancelled")]
    assert len(SlowEngine.pages) == 1, "the job went on after its cancel"


def test_a_client_that_disconnects_cancels_its_job(
    gate: threading.Event, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pdf = write_pdf(tmp_path / "three.pdf", 3).read_bytes()
    with serving("slow") as (server, client):
        queue = server.service.queue
        submitted: list[Job] = []
        submit = queue.submit

        def recording_submit(*args: Any, **kwargs: Any) -> Job:
            submitted.append(submit(*args, **kwargs))
            return submitted[-1]

        monkeypatch.setattr(queue, "submit", recording_submit)
        with pytest.raises(httpx.ReadTimeout):  # the client gives up and closes its connection
            httpx.post(
                f"{server.url}/v1/ocr",
                files={"file": ("doc.pdf", pdf)},
                data={"wait": "true"},
                timeout=httpx.Timeout(WAIT, read=0.5),
            )
        until(lambda: bool(submitted) and submitted[0].cancelled(), "the job to be cancelled")
        gate.set()
        until(lambda: not queue.busy, "the worker to stop")
        assert client.get("/v1/health").json()["queued"] == 0
    assert len(SlowEngine.pages) == 1, "the worker read on after the client had gone"


def test_more_unfinished_work_than_max_jobs_is_refused(gate: threading.Event) -> None:
    with serving("slow", max_jobs=1) as (_server, client):
        first = upload(client, png_bytes(20, 20), wait="false")
        second = upload(client, png_bytes(20, 20), wait="false")
        gate.set()
    assert first.status_code == 202
    assert second.status_code == 429 and second.json()["code"] == "busy"


# -- bad input -------------------------------------------------------------------------------------


def test_bad_inputs_get_the_clis_message_and_leave_nothing_behind(
    engines: None, tmp_path: Path, private_tmp: Path, textdrop_home: Path
) -> None:
    limits = SourceLimits(max_file_mb=0.05, max_pages=3)  # 51 KiB
    text = write_text_as_image(tmp_path / "notes.png").read_bytes()
    bomb = write_bomb_png(tmp_path / "bomb.png").read_bytes()
    over_file = os.urandom(60 * 1024)  # over the file limit, within the body limit
    over_body = os.urandom(3 * 1024 * 1024)  # over the body limit: refused before or while it is read
    head = b'--xyz\r\nContent-Disposition: form-data; name="file"; filename="big"\r\n\r\n'
    multipart = head + over_body + b"\r\n--xyz--\r\n"
    pdf = write_pdf(tmp_path / "six.pdf", 6).read_bytes()
    home_before = sorted(textdrop_home.rglob("*"))
    with serving(limits=limits) as (server, client):
        answers = {
            "text": upload(client, text),
            "bomb": upload(client, bomb),
            "over_file": upload(client, over_file),
            "over_body": upload(client, over_body),
            "over_body_chunked": client.post(  # no Content-Length: counted while it is read
                "/v1/ocr",
                content=iter([multipart[i : i + 65536] for i in range(0, len(multipart), 65536)]),
                headers={"Content-Type": "multipart/form-data; boundary=xyz"},
            ),
            "pages": upload(client, pdf),
            "schema": upload(client, png_bytes(9, 9), mode="json", schema='{"type": 12}'),
            "schema_json": upload(client, png_bytes(9, 9), schema="{not json"),
            "engine": upload(client, png_bytes(9, 9), engine="nonesuch"),
            "model_path": upload(client, png_bytes(9, 9), engine="llama", model="/etc/passwd"),
            "page": upload(client, png_bytes(9, 9), pages="2"),
            "box": upload(client, png_bytes(9, 9), box="5,5,1,1"),
            "no_file": client.post("/v1/ocr", data={"mode": "text"}, files={"other": ("x", b"x")}),
            "base64": client.post("/v1/ocr", json={"data": "not base64!"}),
            "extra": client.post("/v1/ocr", json={"data": "", "colour": "red"}),
            "type": client.post("/v1/ocr", content=b"raw", headers={"Content-Type": "image/png"}),
        }
        service = server.service
        assert not service._unfinished and len(service.queue) == 0
    expected = {
        "text": (422, "input_file", cli_message(text)),
        "bomb": (413, "limit_exceeded", cli_message(bomb, limits)),
        "over_file": (413, "limit_exceeded", cli_message(over_file, limits)),
        "pages": (413, "limit_exceeded", cli_message(pdf, limits)),
    }
    for key, (status, code, message) in expected.items():
        body = answers[key].json()
        assert (answers[key].status_code, body["code"], body["message"]) == (status, code, message), key
    assert "content-length" not in answers["over_body_chunked"].request.headers
    for key in ("over_body", "over_body_chunked"):
        assert answers[key].status_code == 413, key
        assert answers[key].json()["code"] == "limit_exceeded"
        assert "0.05 MiB upload limit" in answers[key].json()["message"]
    for key in ("schema", "schema_json", "engine", "model_path", "page", "box", "no_file", "base64", "extra"):
        assert answers[key].status_code == 422, (key, answers[key].text)
    assert answers["schema"].json()["message"].startswith("The schema is not a valid JSON Schema")
    assert answers["engine"].json()["code"] == "engine_unavailable"
    assert "never a path on the server" in answers["model_path"].json()["message"]
    assert answers["type"].status_code == 415
    assert FakeEngine.pages == [], "a refused request reached the engine"
    assert list(private_tmp.iterdir()) == [] and sorted(textdrop_home.rglob("*")) == home_before


# -- service endpoints, safety ---------------------------------------------------------------------


def test_health_models_and_the_openapi_page(engines: None) -> None:
    with serving() as (_server, client):
        until(lambda: client.get("/v1/health").json()["engine_state"] == "ready", "the engine to load")
        health = client.get("/v1/health").json()
        models = client.get("/v1/models").json()
        docs = client.get("/docs")
        spec = client.get("/openapi.json").json()
    assert health["status"] == "ok" and health["engine"] == "fake" and health["busy"] is False
    engines_here = {engine["name"]: engine for engine in models["engines"]}
    assert engines_here["fake"]["available"] and models["default"] == "fake"
    assert {"granite-docling-258m"} <= {model["id"] for model in models["models"]}
    assert all(set(model["downloaded"]) <= set(model["backends"]) for model in models["models"])
    assert docs.status_code == 200 and "swagger" in docs.text.lower()
    body = spec["paths"]["/v1/ocr"]["post"]["requestBody"]["content"]
    assert set(body) == {"multipart/form-data", "application/json"}
    assert {"/v1/jobs/{job_id}", "/v1/jobs/{job_id}/events", "/v1/health", "/v1/models"} <= set(spec["paths"])


def test_a_token_is_required_when_set_and_cors_is_closed_unless_configured(engines: None) -> None:
    with serving(token="s3cret", cors_origins=["http://app.example"]) as (server, client):
        anonymous = httpx.get(f"{server.url}/v1/models")
        wrong = httpx.get(f"{server.url}/v1/models", headers={"Authorization": "Bearer nope"})
        right = client.get("/v1/models")
        open_health = httpx.get(f"{server.url}/v1/health")
        preflight = httpx.options(
            f"{server.url}/v1/ocr",
            headers={"Origin": "http://app.example", "Access-Control-Request-Method": "POST"},
        )
        foreign = client.get("/v1/models", headers={"Origin": "http://evil.example"})
    with serving() as (server, client):
        closed = client.get("/v1/models", headers={"Origin": "http://app.example"})
        rebound = client.get("/v1/models", headers={"Host": "evil.example"})  # DNS rebinding
    assert anonymous.status_code == 401 and anonymous.headers["www-authenticate"] == "Bearer"
    assert wrong.status_code == 401 and right.status_code == 200 and open_health.status_code == 200
    assert preflight.headers["access-control-allow-origin"] == "http://app.example"
    assert foreign.status_code == 403 and closed.status_code == 403
    assert "access-control-allow-origin" not in closed.headers
    assert rebound.status_code == 403 and rebound.json()["code"] == "forbidden"


def serve_process(*args: str, token: str | None = None) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if k != "TEXTDROP_TOKEN"}
    if token:
        env["TEXTDROP_TOKEN"] = token
    return subprocess.Popen(
        [sys.executable, "-m", "tests.helpers.run_textdrop", "serve", "-e", "fake", *args],
        cwd=REPO,
        env={**env, "PYTHONPATH": str(REPO)},
        stderr=subprocess.PIPE,
        text=True,
    )


def test_a_non_loopback_bind_is_refused_without_a_token_and_served_with_one() -> None:
    refused = serve_process("--host", "0.0.0.0", "--port", "0")
    _, stderr = refused.communicate(timeout=60)
    assert refused.returncode == 2
    assert "Refusing to listen on 0.0.0.0 without a token" in stderr
    served = serve_process("--host", "0.0.0.0", "--port", "0", token="s3cret")
    try:
        assert served.stderr is not None
        line = served.stderr.readline()
        match = re.search(r"listening on http://0\.0\.0\.0:(\d+)", line)
        assert match, line
        url = f"http://127.0.0.1:{match.group(1)}"  # traffic stays on loopback
        image = {"file": ("page.png", png_bytes(30, 20))}
        denied = httpx.post(f"{url}/v1/ocr", files=image, timeout=WAIT)
        allowed = httpx.post(
            f"{url}/v1/ocr", files=image, headers={"Authorization": "Bearer s3cret"}, timeout=WAIT
        )
        assert denied.status_code == 401
        assert allowed.status_code == 200 and allowed.json()["markdown"] == fake_text(30, 20)
        served.send_signal(signal.SIGTERM)
        _, rest = served.communicate(timeout=60)
    finally:
        if served.poll() is None:
            served.kill()
    assert served.returncode == 0 and "stopped" in rest


def test_the_tray_hook_runs_the_api_over_the_trays_queue_only_when_enabled(
    engines: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("TEXTDROP_TOKEN", raising=False)
    with JobQueue("fake") as queue:
        assert start_in_background(Settings(), queue) is None
        exposed = Settings(server=ServerOptions(enabled=True, host="0.0.0.0", port=0))
        with pytest.raises(UsageError, match="without a token"):
            start_in_background(exposed, queue)
        server = start_in_background(Settings(server=ServerOptions(enabled=True, port=0)), queue)
        assert server is not None
        try:
            answer = httpx.post(f"{server.url}/v1/ocr", files={"file": ("p", png_bytes(11, 7))}, timeout=WAIT)
        finally:
            server.stop()
        assert answer.status_code == 200 and answer.json()["markdown"] == fake_text(11, 7)
        assert queue.submit(png_bytes(5, 5)).result(WAIT).markdown == fake_text(5, 5)  # the queue lives on


def test_a_port_in_use_is_a_clear_error(engines: None) -> None:
    with serving() as (server, _client):
        port = server.socket.getsockname()[1]
        queue = JobQueue("fake")
        with pytest.raises(UsageError, match=f"Cannot listen on 127.0.0.1:{port}"):
            make_server(
                queue,
                ServerOptions(port=port),
                recognize=RecognizeOptions(),
                limits=SourceLimits(),
                token=None,
            )
