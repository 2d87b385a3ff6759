"""The OpenAI-compatible backend against scripted loopback servers (``tests/helpers/openai_server.py``):
broken streams, final and retried HTTP errors, ``max_tokens``, page sizes, JSON mode, several endpoints.

Everything but the server is real: the engine, its guards and the embedded engine behind them.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers.openai_server import PAGE_TEXT, LoopbackServer, Reply
from textdrop.engine import recognize
from textdrop.engine.errors import ExtractionError, ServerRejectedError, TextdropError
from textdrop.engine.registry import RecognizeOptions, create_engine
from textdrop.engine.vlm.guards import RESTART, prompt_tokens
from textdrop.engine.vlm.openai_api import OpenAIEngine, OpenAIOptions, _retry_after

SAMPLE = Path(__file__).parent.parent / "assets" / "samples" / "tess_phototest.tif"
ANSWER = "".join(PAGE_TEXT)
STRICT = RecognizeOptions(fallback=False)

pytestmark = pytest.mark.slow  # each engine loads the embedded engine (about 0.5 s)


@pytest.fixture(scope="module")
def server() -> Iterator[LoopbackServer]:
    with LoopbackServer() as running:
        yield running


@pytest.fixture(scope="module")
def engine(server: LoopbackServer) -> Iterator[OpenAIEngine]:
    options = OpenAIOptions(base_url=server.url, retry_seconds=0.01, retries=3)
    loaded = create_engine("openai:m", {"openai": options})
    loaded.load()
    yield loaded  # type: ignore[misc]
    loaded.close()


@pytest.fixture(autouse=True)
def fresh(server: LoopbackServer) -> Iterator[None]:
    server.replies, server.default = [], Reply()
    server.requests.clear()
    yield
    server.replies = []


@pytest.mark.parametrize(
    ("break_after", "torn"),
    [(0, False), (1, False), (4, False), (len(PAGE_TEXT), False), (3, True), (len(PAGE_TEXT) + 1, True)],
)
def test_a_stream_broken_mid_page_is_read_again_from_the_start(
    engine: OpenAIEngine, server: LoopbackServer, break_after: int, torn: bool
) -> None:
    server.replies = [Reply(break_after=break_after, torn=torn)]
    streamed: list[str] = []
    page = recognize(SAMPLE, engine=engine, options=STRICT, on_text=lambda _, t: streamed.append(t)).pages[0]
    assert len(server.requests) == 2  # the broken stream, then the page afresh
    assert page.markdown == ANSWER.strip() and page.markdown.count("Received in good order.") == 1
    assert page.fallback is None and streamed[-1] == ANSWER
    if break_after:  # text had arrived: the display started over too
        assert "" in streamed


def test_a_broken_stream_yields_one_restart_then_the_whole_answer(
    engine: OpenAIEngine, server: LoopbackServer
) -> None:
    server.replies = [Reply(break_after=2)]
    chunks = list(engine._generate(_page(), "Read.", max_tokens=100, temperature=0.1))
    assert chunks.count(RESTART) == 1 and chunks.index(RESTART) == 2
    assert "".join(chunks[3:]) == ANSWER


@pytest.mark.parametrize(
    ("status", "body", "message"),
    [
        (400, {"error": {"message": "This model's maximum context length is 4096 tokens"}}, "context length"),
        (404, {"error": "model 'm' not found"}, "model 'm' not found"),
        (413, "Payload Too Large", "Payload Too Large"),
        (422, {"detail": [{"msg": "field required"}]}, "field required"),
    ],
)
def test_a_final_http_error_is_not_retried_and_ends_the_page_with_the_server_message(
    engine: OpenAIEngine, server: LoopbackServer, status: int, body: object, message: str
) -> None:
    server.default = Reply(status=status, body=body)
    with pytest.raises(TextdropError, match=message) as raised:
        recognize(SAMPLE, engine=engine, options=STRICT)
    assert f"HTTP {status}" in str(raised.value) and len(server.requests) == 1
    page = recognize(SAMPLE, engine=engine).pages[0]  # with the fallback: the reason is the server's
    assert len(server.requests) == 2 and page.fallback is not None and message in page.fallback


def test_429_and_503_honour_retry_after_capped(
    engine: OpenAIEngine, server: LoopbackServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    waits: list[float] = []
    monkeypatch.setattr(engine, "sleep", waits.append)
    monkeypatch.setattr(engine, "options", engine.options.model_copy(update={"retry_max_seconds": 5.0}))
    server.replies = [
        Reply(status=429, body={"error": "slow down"}, headers={"Retry-After": "2"}),
        Reply(status=503, body="loading", headers={"Retry-After": "3600"}),
    ]
    page = recognize(SAMPLE, engine=engine, options=STRICT).pages[0]
    assert page.markdown == ANSWER.strip() and len(server.requests) == 3
    assert waits == [2.0, 5.0]  # the server's wish, then the cap


def test_retry_after_reads_seconds_and_http_dates() -> None:
    assert _retry_after("7") == 7.0 and _retry_after(None) is None and _retry_after("soon") is None
    assert _retry_after("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0  # a date in the past: at once


def test_max_tokens_is_sent_only_when_the_server_reports_its_context(
    engine: OpenAIEngine, server: LoopbackServer
) -> None:
    recognize(SAMPLE, engine=engine, options=STRICT)
    assert "max_tokens" not in server.requests[-1]
    with LoopbackServer(context=4096) as vllm:
        other = create_engine("openai:m", {"openai": OpenAIOptions(base_url=vllm.url, page_size=1024)})
        try:
            recognize(SAMPLE, engine=other, options=STRICT)
        finally:
            other.close()
        sent = vllm.requests[-1]["max_tokens"]
    assert 0 < sent <= 4096 - prompt_tokens((1024, 768), "")  # prompt + answer fit the context


def test_page_size_follows_the_model_family() -> None:
    sizes = {}
    with LoopbackServer(model="allenai/olmOCR-2-7B-1025-FP8") as olm:
        for model in ("allenai/olmOCR-2-7B-1025-FP8", "granite-docling-258m", "unknown-vlm"):
            engine = create_engine(f"openai:{model}", {"openai": OpenAIOptions(base_url=olm.url)})
            engine.load()
            sizes[model] = engine.page_size
            engine.close()
        fixed = create_engine("openai:x", {"openai": OpenAIOptions(base_url=olm.url, page_size=900)})
        fixed.load()
        fixed.close()
    assert sizes == {"allenai/olmOCR-2-7B-1025-FP8": 1288, "granite-docling-258m": 2048, "unknown-vlm": 1288}
    assert fixed.page_size == 900


def test_json_mode_asks_for_constrained_decoding_and_still_validates(
    engine: OpenAIEngine, server: LoopbackServer
) -> None:
    schema = {"type": "object", "properties": {"total": {"type": "number"}}, "required": ["total"]}
    options = RecognizeOptions(mode="json", json_schema=schema, fallback=False)
    server.default = Reply(chunks=('{"total": ', "12.5}"))
    page = recognize(SAMPLE, engine=engine, options=options).pages[0]
    assert page.data == {"total": 12.5}
    sent = server.requests[-1]["response_format"]
    assert sent["type"] == "json_schema" and sent["json_schema"]["schema"] == schema
    server.default = Reply(chunks=('{"total": "twelve"}',))  # a server that ignores the schema
    with pytest.raises(ExtractionError, match="total: 'twelve' is not of type 'number'"):
        recognize(SAMPLE, engine=engine, options=options)
    assert len(server.requests) == 3  # the valid page, then the invalid answer and its one retry


def _page():
    from PIL import Image

    return Image.open(SAMPLE).convert("RGB")


def test_server_rejected_is_a_textdrop_error() -> None:
    assert issubclass(ServerRejectedError, TextdropError)
