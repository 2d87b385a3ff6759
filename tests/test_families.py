"""The family registry: discovery, lookup by key and by name, and that only families branch on a family."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import textdrop
from textdrop.engine.vlm import families
from textdrop.engine.vlm.guards import message_content

PACKAGE = Path(textdrop.__file__).parent
ALLOWED = (PACKAGE / "engine" / "vlm" / "families", PACKAGE / "engine" / "models" / "catalog.py")


def test_every_family_module_is_found_and_generic_is_last() -> None:
    keys = families.keys()
    assert keys[-1] == "generic"
    assert {"granite-docling", "olmocr", "dots-ocr", "deepseek-ocr", "qwen-vl"} <= set(keys)
    for key in keys:
        assert families.get(key).key == key
        assert set(families.get(key).prompts) == {"markdown", "text"}


@pytest.mark.parametrize(
    ("name", "key"),
    [
        ("olmOCR-2-7B-1025-Q4_K_M.gguf", "olmocr"),  # "olmocr" is longer than a "qwen" hint
        ("Qwen2.5-VL-3B-Instruct-Q4_K_M.gguf", "qwen-vl"),
        ("granite_docling_258M-f16.gguf", "granite-docling"),  # underscores read as hyphens
        ("my-own-model.gguf", "generic"),
    ],
)
def test_guess_takes_the_longest_hint(name: str, key: str) -> None:
    assert families.guess(name).key == key


def test_unknown_keys_are_generic() -> None:
    assert families.get("no-such-family").key == "generic"
    assert families.get(None).key == "generic"


def test_text_first_families_put_the_prompt_before_the_image() -> None:
    olmocr = families.get("olmocr")
    assert olmocr.text_first
    assert [p["type"] for p in message_content("data:,", "Read", olmocr)] == ["text", "image_url"]
    assert [p["type"] for p in message_content("data:,", "Read", families.get("qwen-vl"))] == [
        "image_url",
        "text",
    ]
    assert [p["type"] for p in message_content("data:,", "", families.get("lightonocr"))] == ["image_url"]


def test_no_module_outside_the_families_and_the_catalogue_names_a_family() -> None:
    keys = set(families.keys()) - {"generic"}
    offenders = []
    for path in PACKAGE.rglob("*.py"):
        if any(path == allowed or allowed in path.parents for allowed in ALLOWED):
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value in keys:
                offenders.append(f"{path.relative_to(PACKAGE)}:{node.lineno} {node.value!r}")
    assert offenders == []
