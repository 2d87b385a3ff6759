"""The VLM guards on real kinds of pages: each page is rendered as an image and its Markdown is streamed by
the scripted VLM token by token, as a model would; the whole text must come through.

Everything but the model is real (``tests/helpers/fake_vlm.py``): page preparation, the blank-page check,
the output budget, the loop detector, reasoning removal, retries and the fallback.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import Image, ImageDraw

from tests.helpers.fake_vlm import ScriptedVlm
from textdrop.engine import recognize
from textdrop.engine.documents.sidecar import read_metadata, write_sidecar
from textdrop.engine.registry import RecognizeOptions
from textdrop.engine.vlm.guards import ATTEMPT_TEMPERATURES

pytestmark = pytest.mark.slow  # the embedded engine loads behind the scripted VLM (about 0.5 s)


@pytest.fixture(scope="module")
def engine() -> Iterator[ScriptedVlm]:
    vlm = ScriptedVlm()
    vlm.load()
    yield vlm
    vlm.close()


@pytest.fixture(autouse=True)
def scripts() -> Iterator[None]:
    ScriptedVlm.reset()
    yield
    ScriptedVlm.reset()


def tokens(text: str) -> list[str]:
    """``text`` split as a BPE tokenizer roughly would: words, runs of spaces, single punctuation marks."""
    return re.findall(r"\w+|[ \t]+|\n|[^\w\s]", text)


def sheet(markdown: str) -> Image.Image:
    """The page the Markdown describes, drawn as a scan would show it: each line of text on a ruled row."""
    lines = markdown.split("\n")
    image = Image.new("RGB", (1000, 40 + 22 * len(lines)), "white")
    draw = ImageDraw.Draw(image)
    for row, line in enumerate(lines):
        y = 20 + 22 * row
        draw.text((30, y), line.replace("|", " | "), fill="black")
        draw.line((25, y + 18, 975, y + 18), fill="black")
    return image


def read(engine: ScriptedVlm, markdown: str, **options: object) -> str:
    ScriptedVlm.scripts = [tokens(markdown)]
    page = recognize(sheet(markdown), engine=engine, options=RecognizeOptions(**options)).pages[0]
    assert page.fallback is None and not page.truncated, page.notes
    assert len(ScriptedVlm.calls) == 1, page.notes  # no loop was seen, nothing was retried
    return page.markdown


HEADER = "| Date | Description | Amount |\n|---|---|---|\n"

PAGES = {
    "a table with 40 empty rows": HEADER
    + "| 2024-03-01 | Opening | 10.00 |\n"
    + "|  |  |  |\n" * 40
    + "| | Total | 10.00 |",
    "a checklist form": "# Site inspection\n\n" + "- [ ]\n" * 24 + "- [x] Fire exits clear\n- [ ] Signed off",
    "repeated form lines": "## Attendees\n\n"
    + "Name: ____________________ Signature: ____________________\n\n" * 30
    + "Chair: J. Doe",
    "a long numeric table": "| Q1 | Q2 | Q3 | Q4 |\n|---|---|---|---|\n"
    + "".join(f"| {i}.25 | {i * 3}.10 | {i * 7 % 13}.00 | 1{i}.75 |\n" for i in range(80))
    + "| 0.00 | 0.00 | 0.00 | 0.00 |\n" * 70
    + "| 12.00 | 7.50 | 3.25 | 9.00 |",
    "a table of contents with dotted leaders": "# Contents\n\n"
    + "".join(f"{n}. Chapter {n} " + "." * 60 + f" {n * 9}\n" for n in range(1, 31))
    + ("." * 80 + "\n") * 20
    + "Index "
    + "." * 70
    + " 301",
}


@pytest.mark.parametrize("kind", PAGES)
def test_the_whole_page_comes_through(engine: ScriptedVlm, kind: str) -> None:
    markdown = PAGES[kind]
    assert read(engine, markdown) == markdown.strip()


def test_a_dense_numeric_table_is_not_cut(engine: ScriptedVlm) -> None:
    """The old cap (256 + 0.6 × the detector's character estimate) cut such a page to about 40 % of its
    rows; the budget from the context and the page holds all of it."""
    rows = "".join(
        f"| {i:04} | {i * 17 % 997}.{i % 100:02} | {i * 31 % 89} | {i % 7}.5 |\n" for i in range(160)
    )
    markdown = "| No | Amount | Qty | Rate |\n|---|---|---|---|\n" + rows
    assert len(tokens(markdown)) > 3000  # one token a digit, as Qwen2 tokenizers count them
    assert read(engine, markdown) == markdown.strip()


def test_a_real_loop_of_empty_rows_past_the_page_is_still_caught(engine: ScriptedVlm) -> None:
    loop = HEADER + "| 2024-03-01 | Opening | 10.00 |\n" + "|  |  |  |\n" * 600
    ScriptedVlm.scripts = [tokens(loop), tokens(PAGES["a table with 40 empty rows"])]
    page = recognize(sheet(PAGES["a table with 40 empty rows"]), engine=engine).pages[0]
    assert ScriptedVlm.calls[0].closed and ScriptedVlm.calls[0].chunks_sent < len(tokens(loop)) // 2
    assert page.markdown == PAGES["a table with 40 empty rows"].strip() and any(
        "looped" in n for n in page.notes
    )


def test_the_last_attempt_keeps_the_text_before_a_loop(engine: ScriptedVlm) -> None:
    good = "# Minutes\n\nThe meeting opened at 9:00.\n\n"
    loop = good + "The meeting opened at 9:00 and the chair spoke. " * 40
    ScriptedVlm.scripts = [tokens(loop) for _ in ATTEMPT_TEMPERATURES]
    page = recognize(sheet(good), engine=engine).pages[0]
    assert len(ScriptedVlm.calls) == len(ATTEMPT_TEMPERATURES) and page.fallback is None
    assert page.markdown.startswith(good.strip()) and page.markdown.count("the chair spoke") == 1


@pytest.mark.parametrize(
    "answer",
    [
        "<think>\nThe user wants the page. Let me read it.\n</think>\n\n# Receipt\n\nTotal: 12.50",
        # the chat template opened the block: only its end is generated
        "The page shows a receipt; I will transcribe it.\n</think>\n\n# Receipt\n\nTotal: 12.50",
    ],
)
def test_reasoning_never_reaches_the_sidecar_the_clipboard_or_the_stream(
    engine: ScriptedVlm, answer: str, tmp_path: Path
) -> None:
    ScriptedVlm.scripts = [tokens(answer)]
    streamed: list[str] = []
    result = recognize(
        sheet("# Receipt\n\nTotal: 12.50"), engine=engine, on_text=lambda _, t: streamed.append(t)
    )
    page = result.pages[0]
    assert page.markdown == "# Receipt\n\nTotal: 12.50" and "think" not in page.text.lower()
    source = tmp_path / "receipt.png"
    sheet("x").save(source)
    sidecar = write_sidecar(result, source, "md").read_text()
    assert "think" not in sidecar and "Let me" not in sidecar and "transcribe it" not in sidecar
    if answer.startswith("<think>"):
        assert not any("<th" in text or "Let me" in text for text in streamed)


def test_an_unterminated_reasoning_block_is_dropped_and_the_page_retried(engine: ScriptedVlm) -> None:
    ScriptedVlm.scripts = [
        tokens("<think>\nFirst I look at the header. " + "Then the rows. " * 5),
        tokens("Total: 12.50"),
    ]
    page = recognize(sheet("Total: 12.50"), engine=engine).pages[0]
    assert page.markdown == "Total: 12.50" and len(ScriptedVlm.calls) == 2
    assert any("empty" in note for note in page.notes)


def test_a_page_cut_at_its_budget_says_so_in_the_front_matter(engine: ScriptedVlm, tmp_path: Path) -> None:
    markdown = PAGES["a long numeric table"]
    ScriptedVlm.scripts = [tokens(markdown)]
    result = recognize(sheet(markdown), engine=engine, options=RecognizeOptions(max_tokens=300))
    assert result.pages[0].truncated and ScriptedVlm.calls[0].chunks_sent == 300
    source = tmp_path / "table.png"
    sheet("x").save(source)
    meta = read_metadata(write_sidecar(result, source, "md"))
    assert meta is not None and meta["truncated"] == [1]
