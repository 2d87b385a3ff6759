"""The VLM guards with a scripted model: streaming, loops, blank pages, token cap, modes, fallback, abort.

The model's output is scripted (``tests/helpers/fake_vlm.py``); everything around it is real, including
the embedded engine's detector and the fallback, which read real scans.
"""

from __future__ import annotations

import concurrent.futures
import io
import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import Image

from tests.helpers.fake_vlm import ScriptedVlm
from textdrop.engine import recognize, registry
from textdrop.engine.documents.sidecar import read_metadata, write_sidecar
from textdrop.engine.documents.sources import open_source
from textdrop.engine.errors import ExtractionError, TextdropError
from textdrop.engine.jobs import JobQueue, Priority
from textdrop.engine.registry import RecognizeOptions
from textdrop.engine.vlm.guards import ATTEMPT_TEMPERATURES, TOKENS_BASE, output_budget, prepare_page

SAMPLES = Path(__file__).parent.parent / "assets" / "samples"
PHOTOTEST = SAMPLES / "tess_phototest.tif"  # 640x480, eight lines of 12 pt text
LOOP = ["The same sentence again. "] * 200

pytestmark = pytest.mark.slow  # the embedded engine loads (about 0.5 s) for every engine instance


@pytest.fixture(scope="module")
def engine() -> Iterator[ScriptedVlm]:
    """One loaded scripted engine for the module (the embedded engine's load is the slow part)."""
    vlm = ScriptedVlm()
    vlm.load()
    yield vlm
    vlm.close()


@pytest.fixture(autouse=True)
def scripts() -> Iterator[type[ScriptedVlm]]:
    ScriptedVlm.reset()
    yield ScriptedVlm
    ScriptedVlm.reset()


def test_page_streams_and_becomes_markdown_and_text(engine: ScriptedVlm) -> None:
    ScriptedVlm.scripts = [
        ["```markdown\n", "# Invoice\n\n", "| a | b |\n", "|---|---|\n", "| 1 | 2 |\n", "```"]
    ]
    seen: list[tuple[int, str]] = []
    result = recognize(PHOTOTEST, engine=engine, on_text=lambda page, text: seen.append((page, text)))
    page = result.pages[0]
    assert result.engine == "scripted" and result.model == "scripted-model"
    assert page.markdown == "# Invoice\n\n| a | b |\n|---|---|\n| 1 | 2 |"  # the fence is stripped
    assert "#" not in page.text and "Invoice" in page.text
    assert [text for _, text in seen][:2] == ["```markdown\n", "```markdown\n# Invoice\n\n"]
    assert {number for number, _ in seen} == {1}
    assert len(ScriptedVlm.calls) == 1 and ScriptedVlm.calls[0].temperature == ATTEMPT_TEMPERATURES[0]


def test_page_is_resized_to_the_model_page_size(engine: ScriptedVlm) -> None:
    recognize(Image.open(SAMPLES / "sroie_058.jpg"), engine=engine)  # 1080x1527
    assert ScriptedVlm.calls[0].size == (724, 1024)


def test_loop_is_cut_and_retried_hotter(engine: ScriptedVlm) -> None:
    ScriptedVlm.scripts = [list(LOOP), ["Fine ", "text."]]
    page = recognize(PHOTOTEST, engine=engine).pages[0]
    first, second = ScriptedVlm.calls
    assert first.closed and first.chunks_sent < len(LOOP) // 2, "the looping stream was not cut early"
    assert (first.temperature, second.temperature) == ATTEMPT_TEMPERATURES[:2]
    assert page.markdown == "Fine text." and page.fallback is None
    assert any("looped" in note for note in page.notes)


def test_page_that_keeps_looping_keeps_the_text_before_the_loop(engine: ScriptedVlm) -> None:
    lead = ["Invoice 42\n\n", "Delivered to Main Street.\n\n"]
    ScriptedVlm.scripts = [lead + list(LOOP) for _ in ATTEMPT_TEMPERATURES]
    page = recognize(PHOTOTEST, engine=engine).pages[0]
    assert [c.temperature for c in ScriptedVlm.calls] == list(ATTEMPT_TEMPERATURES)
    assert page.fallback is None and "kept the text up to where the loop began" in page.notes
    assert page.markdown.startswith("Invoice 42\n\nDelivered to Main Street.")
    assert page.markdown.count("The same sentence again.") == 1


def test_runtime_error_falls_back_at_the_original_resolution_and_no_fallback_raises(
    engine: ScriptedVlm, tmp_path: Path
) -> None:
    ScriptedVlm.scripts = [["partial ", RuntimeError("decode failed")] for _ in ATTEMPT_TEMPERATURES]
    result = recognize(PHOTOTEST, engine=engine)
    page = result.pages[0]
    assert (
        page.fallback is not None and page.fallback.startswith("rapid: ") and "decode failed" in page.fallback
    )
    assert "quick brown dog" in page.text  # really read by the embedded engine
    assert (page.width, page.height) == (640, 480)  # the scan as it is, not the VLM's 1024 px page
    source = tmp_path / "scan.tif"
    source.write_bytes(PHOTOTEST.read_bytes())
    meta = read_metadata(write_sidecar(result, source, "md"))
    assert meta is not None and meta["engine"] == "scripted"
    assert meta["engines"] == {"rapid": [1]} and page.engine == "rapid"
    [entry] = meta["fallback"]
    assert entry["page"] == 1 and entry["engine"] == "rapid" and "decode failed" in entry["why"]
    ScriptedVlm.scripts = [[RuntimeError("decode failed")] for _ in ATTEMPT_TEMPERATURES]
    with pytest.raises(TextdropError, match="could not read a page"):
        recognize(PHOTOTEST, engine=engine, options=RecognizeOptions(fallback=False))


def test_blank_page_is_told_from_its_pixels_without_the_vlm_or_the_detector(
    engine: ScriptedVlm, monkeypatch: pytest.MonkeyPatch
) -> None:
    surveys: list[object] = []
    monkeypatch.setattr(engine._embedded, "detect_lines", lambda image: surveys.append(image) or [])
    ScriptedVlm.scripts = [["Invented."]]
    page = recognize(Image.new("RGB", (800, 1000), "white"), engine=engine).pages[0]
    assert page.markdown == "" and page.text == "" and any("no ink" in note for note in page.notes)
    assert ScriptedVlm.calls == [] and surveys == []  # neither the VLM nor the detector ran


def test_a_speckled_blank_scan_is_surveyed_and_its_answer_dropped(engine: ScriptedVlm) -> None:
    scan = Image.new("RGB", (800, 1000), "white")
    for x, y in ((100, 100), (400, 620), (700, 900)):
        scan.putpixel((x, y), (0, 0, 0))  # dust: some ink, no text
    ScriptedVlm.scripts = [["Invented."]]
    page = recognize(scan, engine=engine).pages[0]
    assert page.markdown == "" and any("detector found no text" in note for note in page.notes)
    assert ScriptedVlm.calls == []


def test_a_page_with_text_goes_to_the_vlm_without_a_survey(
    engine: ScriptedVlm, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(engine._embedded, "detect_lines", lambda image: pytest.fail("surveyed a text page"))
    page = recognize(Image.open(SAMPLES / "sroie_058.jpg"), engine=engine).pages[0]
    assert page.markdown.startswith("# Invoice") and len(ScriptedVlm.calls) == 1


def _words(count: int) -> list[str]:
    return [f"w{i} " for i in range(count)]  # no loop: every chunk differs


def test_budget_comes_from_the_context_and_the_page() -> None:
    prompt = "Read the page."
    roomy, tight = output_budget(32768, (1024, 1024), prompt), output_budget(4096, (1024, 1024), prompt)
    assert tight < roomy and tight == 4096 - (1024 * 1024 // 784 + len(prompt) // 3 + 64)
    assert output_budget(32768, (300, 200), prompt) < roomy  # a small page holds less text
    assert output_budget(1500, (1024, 1024), prompt) == TOKENS_BASE  # never below the floor


def test_a_page_that_reaches_its_budget_is_marked_in_the_front_matter(
    engine: ScriptedVlm, tmp_path: Path
) -> None:
    ScriptedVlm.scripts = [_words(500)]
    result = recognize(PHOTOTEST, engine=engine, options=RecognizeOptions(max_tokens=77))
    page = result.pages[0]
    assert ScriptedVlm.calls[0].chunks_sent == 77 and page.truncated
    assert any("budget of 77 tokens" in note for note in page.notes)
    source = tmp_path / "scan.tif"
    source.write_bytes(PHOTOTEST.read_bytes())
    meta = read_metadata(write_sidecar(result, source, "md"))
    assert meta is not None and meta["truncated"] == [1]


def test_json_mode_extracts_validates_and_retries_once(engine: ScriptedVlm) -> None:
    schema = {"type": "object", "properties": {"total": {"type": "number"}}, "required": ["total"]}
    ScriptedVlm.scripts = [['```json\n{"total": "12.50"}\n```'], ['Here it is: {"total": 12.5}']]
    options = RecognizeOptions(mode="json", fields=("total",), json_schema=schema)
    page = recognize(PHOTOTEST, engine=engine, options=options).pages[0]
    assert page.data == {"total": 12.5}
    assert json.loads(page.markdown.removeprefix("```json\n").removesuffix("\n```")) == {"total": 12.5}
    assert len(ScriptedVlm.calls) == 2 and any("invalid JSON" in note for note in page.notes)
    assert "total" in ScriptedVlm.calls[0].prompt
    assert ScriptedVlm.calls[0].json_schema == schema  # constrained decoding where the runtime has it


def test_json_mode_gives_up_after_one_retry_with_a_clear_error(engine: ScriptedVlm) -> None:
    ScriptedVlm.scripts = [["not json"], ["<think>hmm</think>still not json"], ["never asked"]]
    with pytest.raises(ExtractionError, match=r"no valid JSON .* after 2 attempts") as raised:
        recognize(PHOTOTEST, engine=engine, options=RecognizeOptions(mode="json"))
    assert len(ScriptedVlm.calls) == 2
    assert "'still not json'" in str(raised.value) and "hmm" not in str(raised.value)


def test_text_mode_and_free_prompt(engine: ScriptedVlm) -> None:
    ScriptedVlm.scripts = [["## Heading\n\n**bold** words"]]
    options = RecognizeOptions(mode="text", prompt="Read the receipt.")
    page = recognize(PHOTOTEST, engine=engine, options=options).pages[0]
    assert ScriptedVlm.calls[0].prompt == "Read the receipt."
    assert page.markdown == page.text and "**" not in page.text and "#" not in page.text


def test_cancel_stops_generation_mid_page_and_engine_is_reused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(registry.BUILTIN_ENGINES, "scripted", "tests.helpers.fake_vlm:ScriptedVlm")
    ScriptedVlm.scripts = [_words(2000)]  # distinct words: only the cancel can stop it
    ScriptedVlm.chunk_delay = 0.005  # 10 s in all if nothing stops it
    with JobQueue("scripted") as queue:
        no_cap = RecognizeOptions(max_tokens=4000)  # nor the token cap
        job = queue.submit(PHOTOTEST, priority=Priority.INTERACTIVE, options=no_cap)
        assert ScriptedVlm.first_chunk.wait(30)
        started = time.monotonic()
        assert job.cancel()
        with pytest.raises(concurrent.futures.CancelledError):
            job.result()
        deadline = time.monotonic() + 5
        while not ScriptedVlm.calls[0].closed and time.monotonic() < deadline:
            time.sleep(0.01)
        assert ScriptedVlm.calls[0].closed and time.monotonic() - started < 2
        assert ScriptedVlm.calls[0].chunks_sent < 1000
        ScriptedVlm.chunk_delay = 0.0
        again = queue.submit(PHOTOTEST).result(timeout=60)
    assert again.pages[0].markdown.startswith("# Invoice")


def test_prepare_page_keeps_aspect_and_limits_upscaling() -> None:
    assert prepare_page(Image.new("RGB", (3000, 2000)), 1288).size == (1288, 859)
    assert prepare_page(Image.new("RGB", (300, 100)), 1288).size == (600, 200)
    small = Image.new("RGB", (1288, 500))
    assert prepare_page(small, 1288) is small and prepare_page(small, None) is small


def test_pdf_pages_are_rendered_at_the_page_size() -> None:
    buffer = io.BytesIO()
    Image.new("RGB", (850, 1100), "white").save(buffer, format="PDF", resolution=100)  # 612x792 pt
    with open_source(buffer.getvalue(), page_size=1288) as document:
        page = next(document.pages())
    assert max(page.size) == 1288 and abs(page.width / page.height - 612 / 792) < 0.01


def test_json_mode_on_a_transcription_model_says_so(
    engine: ScriptedVlm, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(engine, "family", "granite-docling")
    ScriptedVlm.scripts = [['{"total": 1}']]
    page = recognize(PHOTOTEST, engine=engine, options=RecognizeOptions(mode="json")).pages[0]
    assert page.data == {"total": 1}
    assert any("trained to transcribe" in note for note in page.notes)
