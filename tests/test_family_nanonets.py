"""Nanonets-OCR2 end to end on a tiny programmed Qwen2.5-VL (llama.cpp and mlx-vlm).

The fixture (``tests/fixtures/tiny/qwen2_5_vl.py``) answers in Nanonets-OCR2's documented format
(https://huggingface.co/nanonets/Nanonets-OCR2-3B: Markdown, tables as HTML, ``<page_number>`` tags): the
tests prove that textdrop sends the model card's prompt after the image with Qwen2.5-VL's default system
turn, that the answer arrives whole, and that no fallback hid a failure.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.helpers.tiny_families import build, read_page, token_ids
from textdrop.engine.vlm import families

pytestmark = pytest.mark.vlm


@pytest.mark.parametrize("backend", ["llama", "mlx"], ids=["nanonets-ocr-llama", "nanonets-ocr-mlx"])
def test_nanonets_page_end_to_end(backend: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    model = build("qwen2_5_vl", backend, tmp_path / f"nanonets-{backend}", "nanonets-ocr")
    run = read_page(model, monkeypatch)
    assert run.family == "nanonets-ocr"

    assert token_ids(model, run.prompt) == token_ids(model, run.expected_prompt(model.prompt))
    assert run.prompt.startswith("<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n")
    prompt = families.get("nanonets-ocr").prompts["markdown"]
    assert run.prompt.index(run.marker) < run.prompt.index(prompt), "the image goes first"
    assert run.raw == model.answer.removesuffix("<|im_end|>")
    assert run.page.markdown == (
        "# Invoice\n\n<table><tr><td>Tea</td><td>4.00</td></tr></table>\n\n<page_number>1</page_number>"
    )
    assert run.page.fallback is None
