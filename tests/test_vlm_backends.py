"""The real VLM runtimes end to end on tiny random-weight Qwen2-VL models (meaningless text, real code).

llama-cpp-python (GGUF + mmproj through MTMDChatHandler), mlx-vlm (on the CPU with ``mlx[cpu]``) and the
OpenAI-compatible backend against a real ``llama_cpp.server`` on 127.0.0.1. The models are made by
``tests/fixtures/make_tiny_models.py``.
"""

from __future__ import annotations

import itertools
import logging
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from PIL import Image

from textdrop.cli import run
from textdrop.engine import recognize
from textdrop.engine.documents.sidecar import read_metadata, write_sidecar
from textdrop.engine.registry import GenerationAborted, RecognizeOptions, create_engine
from textdrop.engine.vlm.openai_api import OpenAIOptions

FIXTURES = Path(__file__).parent / "fixtures"
GGUF_DIR = FIXTURES / "tiny-qwen2vl-gguf"
MLX_DIR = FIXTURES / "tiny-qwen2vl-mlx"
SAMPLE = Path(__file__).parent.parent / "assets" / "samples" / "tess_phototest.tif"
SHORT = RecognizeOptions(max_tokens=24, fallback=False)
"""Few tokens: the tiny models are fast, but meaningless text would soon look like a loop."""

pytestmark = pytest.mark.vlm

needs_llama = pytest.mark.skipif(
    not create_engine("rapid").is_available() or __import__("importlib").util.find_spec("llama_cpp") is None,
    reason="llama-cpp-python is not installed (make test installs the [llama] extra)",
)
needs_mlx = pytest.mark.skipif(
    __import__("importlib").util.find_spec("mlx_vlm") is None,
    reason="mlx-vlm is not installed (make test installs the [mlx] extra)",
)


@pytest.fixture(params=[pytest.param("llama", marks=needs_llama), pytest.param("mlx", marks=needs_mlx)])
def backend(request: pytest.FixtureRequest) -> str:
    return request.param


def _model_dir(backend: str) -> Path:
    return GGUF_DIR if backend == "llama" else MLX_DIR


def test_cli_writes_a_sidecar_naming_engine_and_model(
    backend: str, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    source = tmp_path / "scan.tif"
    source.write_bytes(SAMPLE.read_bytes())
    code = run(
        ["ocr", str(source), "--engine", backend, "--model", str(_model_dir(backend)), "--max-tokens", "24"]
    )
    assert code == 0
    meta = read_metadata(tmp_path / "scan.tif.md")
    assert meta is not None
    assert meta["engine"] == backend and meta["model"] == _model_dir(backend).name
    err = capfd.readouterr().err  # the C libraries' own output too (file descriptor 2)
    assert "clip_" not in err and "llama_context" not in err and "load_hparams" not in err, err[:500]


def test_stream_abort_reuse_and_close(backend: str) -> None:
    engine = create_engine(f"{backend}:{_model_dir(backend)}")
    engine.load()
    try:
        streamed: list[str] = []
        result = recognize(
            SAMPLE, engine=engine, options=SHORT, on_text=lambda _, text: streamed.append(text)
        )
        assert streamed, "no text was streamed"
        assert all(b.startswith(a) for a, b in itertools.pairwise(streamed))
        # llama.cpp streams token by token; mlx-vlm's detokenizer may hold text until a word ends
        assert len(streamed) >= (2 if backend == "llama" else 1)
        assert result.pages[0].fallback is None

        def abort_on_first_chunk(_: int, __: str) -> None:
            engine.abort()

        with pytest.raises(GenerationAborted):
            recognize(SAMPLE, engine=engine, options=SHORT, on_text=abort_on_first_chunk)
        again = recognize(SAMPLE, engine=engine, options=SHORT)  # the engine is still usable
        assert again.engine == backend and again.pages[0].fallback is None
    finally:
        engine.close()
    assert getattr(engine, "_llm", None) is None and getattr(engine, "_model", None) is None
    assert not [t.name for t in threading.enumerate() if t.name.startswith(f"textdrop-{backend}-survey")]


@needs_llama
def test_llama_abort_callback_stops_a_decode_in_progress() -> None:
    """The abort reaches llama.cpp itself: a generation asked to stop before its first decode yields
    nothing, and the next one runs normally."""
    engine = create_engine(f"llama:{GGUF_DIR}")
    engine.load()
    try:
        page = Image.open(SAMPLE).convert("RGB")
        engine.abort()
        with pytest.raises(Exception):  # noqa: B017 - llama-cpp-python raises a plain RuntimeError
            list(engine._generate(page, "Read.", max_tokens=16, temperature=0.1))
        engine.reset_abort()
        assert "".join(engine._generate(page, "Read.", max_tokens=16, temperature=0.1))
    finally:
        engine.close()


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def llama_server() -> Iterator[str]:
    """``llama_cpp.server`` serving the tiny GGUF pair on 127.0.0.1; yields its base URL (…/v1)."""
    pytest.importorskip("llama_cpp.server.app", reason="needs llama-cpp-python[server]")
    port = _free_port()
    model = next(p for p in GGUF_DIR.glob("*.gguf") if not p.name.startswith("mmproj"))
    mmproj = next(GGUF_DIR.glob("mmproj*.gguf"))
    command = [
        sys.executable,
        "-m",
        "llama_cpp.server",
        "--model",
        str(model),
        "--clip_model_path",
        str(mmproj),
    ]
    command += ["--chat_format", "mtmd", "--model_alias", "tiny-qwen2vl", "--host", "127.0.0.1"]
    command += ["--port", str(port), "--n_ctx", "4096", "--verbose", "false"]
    server = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    url = f"http://127.0.0.1:{port}/v1"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/models", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            time.sleep(0.2)
        assert server.poll() is None, server.stderr.read().decode(errors="replace") if server.stderr else ""
    else:
        server.kill()
        pytest.fail("llama_cpp.server did not start within 60 s")
    yield url
    server.terminate()
    server.wait(10)


@needs_llama
def test_openai_backend_against_llama_server(llama_server: str, tmp_path: Path) -> None:
    options = OpenAIOptions(base_url=llama_server, page_size=448)
    engine = create_engine("openai:tiny-qwen2vl", {"openai": options})
    streamed: list[str] = []
    os.environ["TEXTDROP_API_KEY"] = "secret-key-never-logged"
    try:
        result = recognize(SAMPLE, engine=engine, options=SHORT, on_text=lambda _, t: streamed.append(t))
    finally:
        del os.environ["TEXTDROP_API_KEY"]
    assert result.engine == "openai" and result.model == "tiny-qwen2vl"
    assert streamed and result.pages[0].fallback is None
    assert result.pages[0].width == 448  # the page was prepared at the configured size


def test_openai_backend_without_server_says_what_to_do() -> None:
    options = OpenAIOptions(base_url=f"http://127.0.0.1:{_free_port()}/v1", connect_timeout=1)
    engine = create_engine("openai:some-model", {"openai": options})
    with pytest.raises(Exception, match="No OpenAI-compatible server answers"):
        engine.load()


def test_openai_presets_set_the_base_url() -> None:
    assert OpenAIOptions(preset="lmstudio").base_url == "http://localhost:1234/v1"
    assert (
        OpenAIOptions(preset="vllm", base_url="http://gpu-box:8000/v1").base_url == "http://gpu-box:8000/v1"
    )


def test_openai_retries_a_server_error_then_streams(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """A scripted HTTP server: the first request gets 503, the second a real event stream. The API key
    from the environment goes only into the Authorization header: not into logs, the result, a sidecar."""
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    requests: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def do_GET(self) -> None:
            body = b'{"data": [{"id": "m"}]}'
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_POST(self) -> None:
            self.rfile.read(int(self.headers["Content-Length"]))
            requests.append(self.headers.get("Authorization", ""))
            if len(requests) == 1:
                self.send_response(503)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.end_headers()
            for text in ("Hello ", "world"):
                self.wfile.write(f'data: {{"choices": [{{"delta": {{"content": "{text}"}}}}]}}\n\n'.encode())
            self.wfile.write(
                b'data: {"choices": [{"delta": {}, "finish_reason": "stop"}]}\n\ndata: [DONE]\n\n'
            )

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    monkeypatch.setenv("MY_SERVER_KEY", "sk-secret-123")
    caplog.set_level(logging.DEBUG)
    try:
        url = f"http://127.0.0.1:{server.server_port}/v1"
        options = OpenAIOptions(base_url=url, retry_seconds=0.01, api_key_env="MY_SERVER_KEY")
        engine = create_engine("openai:m", {"openai": options})
        result = recognize(SAMPLE, engine=engine, options=SHORT)
    finally:
        server.shutdown()
    assert result.pages[0].markdown == "Hello world"
    assert requests == ["Bearer sk-secret-123"] * 2  # retried once after the 503
    source = tmp_path / "scan.tif"
    source.write_bytes(SAMPLE.read_bytes())
    sidecar = write_sidecar(result, source, "json")
    assert "sk-secret" not in caplog.text and "sk-secret" not in sidecar.read_text()
