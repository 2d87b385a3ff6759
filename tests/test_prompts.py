"""Per-family prompts: the documented prompts verbatim, text and json modes, custom prompts."""

from __future__ import annotations

import json
import re

import pytest

from textdrop.engine.vlm import families
from textdrop.engine.vlm.families.qwen_vl import FAMILY as QWEN_VL
from textdrop.engine.vlm.prompts import MODES, build_prompt

FAMILIES = families.keys()

OCR_ONLY = ("granite-docling", "paddleocr-vl", "lightonocr", "deepseek-ocr", "got-ocr", "glm-ocr")


@pytest.mark.parametrize(
    ("family", "prompt"),
    [
        ("granite-docling", "Convert this page to docling."),
        ("paddleocr-vl", "OCR:"),
        ("lightonocr", ""),
        ("deepseek-ocr", "<|grounding|>Convert the document to markdown."),
    ],
)
def test_markdown_prompts_are_the_documented_ones_verbatim(family: str, prompt: str) -> None:
    assert build_prompt(family) == prompt
    assert build_prompt(family, "markdown") == prompt


def test_dots_ocr_markdown_prompt_is_the_layout_prompt_verbatim() -> None:
    prompt = build_prompt("dots-ocr", "markdown")
    assert prompt.startswith(
        "Please output the layout information from the PDF image, including each layout element's bbox, "
        "its category, and the corresponding text content within the bbox.\n\n"
        "1. Bbox format: [x1, y1, x2, y2]"
    )
    assert "    - Table: Format its text as HTML.\n" in prompt
    assert prompt.endswith("5. Final Output: The entire output must be a single JSON object.\n")


def test_nanonets_and_olmocr_prompts_carry_their_markup_instructions() -> None:
    nanonets = build_prompt("nanonets-ocr")
    assert nanonets.startswith(
        "Extract the text from the above document as if you were reading it naturally."
    )
    assert "<watermark>OFFICIAL COPY</watermark>" in nanonets
    assert nanonets.endswith("Prefer using ☐ and ☑ for check boxes.")
    olmocr = build_prompt("olmocr")
    assert olmocr.startswith("Attached is one page of a document that you must process. ")
    assert "Convert equations to LateX and tables to HTML.\n" in olmocr
    assert olmocr.endswith(
        "primary_language, is_rotation_valid, rotation_correction, is_table, and is_diagram parameters."
    )


@pytest.mark.parametrize(
    ("family", "prompt"),
    [
        ("deepseek-ocr", "Free OCR."),
        ("dots-ocr", "Extract the text content from this image."),
        ("qwen-vl", "Read all the text in the image."),
    ],
)
def test_text_mode_uses_the_documented_plain_text_prompt(family: str, prompt: str) -> None:
    assert build_prompt(family, "text") == prompt


@pytest.mark.parametrize(
    "family", ["granite-docling", "paddleocr-vl", "lightonocr", "nanonets-ocr", "olmocr"]
)
def test_text_mode_of_single_prompt_families_reuses_their_one_prompt(family: str) -> None:
    assert build_prompt(family, "text") == build_prompt(family, "markdown")


def test_generic_prompts_ask_for_bare_markdown_and_plain_text() -> None:
    assert "only output the bare markdown" in build_prompt("generic")
    assert "plain text" in build_prompt("generic", "text")
    assert build_prompt("generic", "text") != build_prompt("generic")


@pytest.mark.parametrize("family", ["", "llava", "Some-Unknown-Model", None])
def test_unknown_family_falls_back_to_generic(family: str | None) -> None:
    assert families.get(family).key == "generic"
    assert build_prompt(family, "text") == build_prompt("generic", "text")  # type: ignore[arg-type]


def test_family_key_is_case_and_space_insensitive() -> None:
    assert families.get("  Granite-Docling ").key == "granite-docling"
    assert build_prompt(" PaddleOCR-VL") == "OCR:"


def test_unknown_mode_is_a_value_error_even_with_a_custom_prompt() -> None:
    with pytest.raises(ValueError, match="unknown prompt mode 'html'"):
        build_prompt("generic", "html")
    with pytest.raises(ValueError):
        build_prompt("generic", "Markdown", custom="Read it")


def test_custom_prompt_replaces_the_built_one_as_is() -> None:
    custom = "  qwenvl markdown  "
    assert build_prompt("qwen-vl", "markdown", custom=custom) == custom
    assert (
        build_prompt("olmocr", "json", fields=["total"], custom="Only the total, please")
        == "Only the total, please"
    )


def test_blank_custom_prompt_counts_as_not_given() -> None:
    assert build_prompt("paddleocr-vl", custom="   ") == "OCR:"
    assert build_prompt("paddleocr-vl", custom="") == "OCR:"


def test_json_prompt_lists_the_fields_in_order_quoted() -> None:
    prompt = build_prompt("qwen-vl", "json", fields=["vendor", "date", "total", "vendor", " "])
    assert 'Use exactly these keys: "vendor", "date", "total".' in prompt
    assert "null" in prompt
    assert "single JSON object" in prompt
    assert "no Markdown code fence" in prompt


def test_json_prompt_embeds_the_schema_compactly() -> None:
    schema = {"type": "object", "properties": {"total": {"type": "number"}, "währung": {"type": "string"}}}
    prompt = build_prompt("generic", "json", schema=schema)
    embedded = re.search(r"valid against this JSON Schema: (\{.*\})", prompt)
    assert embedded is not None
    assert json.loads(embedded.group(1)) == schema
    assert '{"type":"object","properties":{"total":' in prompt  # compact separators
    assert "währung" in prompt  # not \u-escaped


def test_json_prompt_without_fields_or_schema_asks_for_the_documents_pairs() -> None:
    prompt = build_prompt("nanonets-ocr", "json")
    assert "document's own labels as keys" in prompt
    assert "Use exactly these keys" not in prompt
    assert "JSON Schema" not in prompt


@pytest.mark.parametrize("family", OCR_ONLY)
def test_ocr_only_families_still_get_the_generic_json_instruction(family: str) -> None:
    assert build_prompt(family, "json", fields=["total"]) == build_prompt("generic", "json", fields=["total"])
    assert not families.get(family).follows_instructions


def test_instruction_following_families() -> None:
    following = {key for key in FAMILIES if families.get(key).follows_instructions}
    assert set(FAMILIES) - set(OCR_ONLY) == following


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("mode", MODES)
def test_every_family_and_mode_has_a_prompt(family: str, mode: str) -> None:
    prompt = build_prompt(family, mode)
    assert isinstance(prompt, str)
    assert prompt or (family == "lightonocr" and mode != "json")


def test_general_vlms_are_told_the_languages_and_ocr_models_keep_their_trained_prompt():
    assert build_prompt("qwen-vl", "markdown", languages=["ru", "en"]) == (
        QWEN_VL.prompts["markdown"] + " The page is in Russian and English."
    )
    assert build_prompt("generic", "text", languages=["xx"]).endswith(" The page is in xx.")
    assert build_prompt("granite-docling", "markdown", languages=["ru"]) == "Convert this page to docling."
    assert build_prompt("qwen-vl", "markdown", custom="Mine.", languages=["ru"]) == "Mine."
