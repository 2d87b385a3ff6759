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

from tests.helpers.tiny_families import build, read_page, tiny_module, token_ids
from textdrop.engine.vlm import families
from textdrop.engine.vlm.guards import ATTEMPT_TEMPERATURES, turn_page
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
    assert len(run.images) == 1, "an upright page is read once"


@pytest.mark.parametrize("backend", ["llama", "mlx"], ids=["olmocr-rotated-llama", "olmocr-rotated-mlx"])
def test_olmocr_rotated_page_is_turned_and_read_again(
    backend: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The model says ``is_rotation_valid: False, rotation_correction: 90`` every time: the page is turned
    90° more at each new attempt, as olmocr/pipeline.py does, and the last attempt's answer is kept."""
    rotated = tiny_module("qwen2_5_vl").ROTATED
    model = build("qwen2_5_vl", backend, tmp_path / f"olmocr-{backend}", "olmocr", recorded=rotated)
    run = read_page(model, monkeypatch)

    upright = run.images[0]
    assert len(run.images) == len(ATTEMPT_TEMPERATURES)
    for attempt, image in enumerate(run.images):
        assert image.tobytes() == turn_page(upright, 90 * attempt % 360).tobytes(), attempt
    assert upright.width > upright.height, "the landscape page was read upright first"
    assert run.images[1].size == (upright.height, upright.width)
    assert [n for n in run.page.notes if "rotated" in n] == [
        "the model found the page rotated: read again turned 90° anticlockwise",
        "the model found the page rotated: read again turned 180° anticlockwise",
    ]
    assert run.page.markdown == "# Invoice"
    assert run.page.fallback is None


def test_olmocr_page_turn_follows_the_front_matter() -> None:
    olmocr = families.get("olmocr")
    upright = (DATA / "olmocr_edgar.md").read_text(encoding="utf-8")
    assert olmocr.page_turn(upright) == 0
    turned = upright.replace(
        "is_rotation_valid: True\nrotation_correction: 0",
        "is_rotation_valid: False\nrotation_correction: 270",
    )
    assert olmocr.page_turn(turned) == 270
    assert olmocr.page_turn(turned.replace("rotation_correction: 270", "rotation_correction: 45")) == 0
    assert olmocr.page_turn("No front matter at all.") == 0
    assert families.get("qwen-vl").page_turn(turned) == 0, "only olmOCR's answers turn pages"


def test_olmocr_converter_drops_the_front_matter_of_recorded_answers() -> None:
    edgar = (DATA / "olmocr_edgar.md").read_text(encoding="utf-8")
    markdown = clean("olmocr", edgar)
    assert markdown.startswith("Edgar (or Eadgar;[1] c. 944")
    assert "primary_language" not in markdown and "---" not in markdown.split("\n")[0]
    assert clean("olmocr", (DATA / "olmocr_blank.md").read_text(encoding="utf-8")) == ""
