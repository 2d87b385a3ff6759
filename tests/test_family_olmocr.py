"""olmOCR-2 end to end on a tiny programmed Qwen2.5-VL (llama.cpp and mlx-vlm), and its converter on
recorded answers.

The fixture (``tests/fixtures/tiny/qwen2_5_vl.py``) answers what olmOCR-2 answers: YAML front matter, then
the page's Markdown. The tests prove that textdrop sends olmOCR's own prompt *before* the image (as
``olmocr/pipeline.py`` does), that the front matter is dropped from the Markdown, and that no fallback hid
a failure.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.helpers.tiny_families import build, read_page, token_ids
from textdrop.engine.vlm import families
from textdrop.engine.vlm.postprocess import clean

pytestmark = pytest.mark.vlm

DATA = Path(__file__).parent / "data" / "vlm_outputs"
MARKDOWN = "# Invoice\n\n<table><tr><td>Tea</td><td>4.00</td></tr></table>"


@pytest.mark.parametrize("backend", ["llama", "mlx"], ids=["olmocr-llama", "olmocr-mlx"])
def test_olmocr_page_end_to_end(backend: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    model = build("qwen2_5_vl", backend, tmp_path / f"olmocr-{backend}", "olmocr")
    run = read_page(model, monkeypatch)
    assert run.family == "olmocr"

    assert token_ids(model, run.prompt) == token_ids(model, run.expected_prompt(model.prompt))
    prompt = families.get("olmocr").prompts["markdown"]
    assert run.prompt.index(prompt) < run.prompt.index(run.marker), "olmOCR's text goes before the image"
    assert run.raw == model.answer.removesuffix("<|im_end|>")
    assert run.raw.startswith("---\nprimary_language: en\nis_rotation_valid: True\n")
    assert run.page.markdown == MARKDOWN
    assert run.page.fallback is None


def test_olmocr_converter_drops_the_front_matter_of_recorded_answers() -> None:
    edgar = (DATA / "olmocr_edgar.md").read_text(encoding="utf-8")
    markdown = clean("olmocr", edgar)
    assert markdown.startswith("Edgar (or Eadgar;[1] c. 944")
    assert "primary_language" not in markdown and "---" not in markdown.split("\n")[0]
    assert clean("olmocr", (DATA / "olmocr_blank.md").read_text(encoding="utf-8")) == ""
