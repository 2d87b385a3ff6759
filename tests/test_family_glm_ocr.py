"""GLM-OCR through the real runtimes, on the tiny programmed fixture (tests/fixtures/tiny/glm_ocr.py):
GGUF ``glm4`` (M-RoPE, sandwich norms, a NextN layer) + mmproj ``glm4v`` on llama.cpp, ``glm_ocr`` on
mlx-vlm. The image, then the task prompt ``Text Recognition:``; the answer ends with GLM's ``<|user|>``."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.fixtures.tiny import glm_ocr
from tests.helpers.tiny_families import (
    BACKENDS,
    assert_reads_as_the_card_says,
    fixture_bytes,
    needs_llama,
    needs_mlx,
    run_llama,
    run_mlx,
)
from textdrop.engine.vlm import families
from textdrop.engine.vlm.prompts import build_prompt

MARKDOWN = glm_ocr.ANSWER


@pytest.fixture(scope="session")
def tiny_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("tiny-glm-ocr")


@pytest.mark.vlm
def test_glm_ocr_fixture_is_tiny(tiny_dir: Path) -> None:
    for backend in ("llama", "mlx"):
        assert fixture_bytes(glm_ocr.build(backend, tiny_dir / f"size-{backend}")) < 2_000_000


@pytest.mark.vlm
@needs_llama
def test_glm_ocr_llama_prompt_and_end_of_turn(tiny_dir: Path) -> None:
    model = glm_ocr.build("llama", tiny_dir / "tiny-glm-ocr-llama")
    run = run_llama(model, glm_ocr.PROMPT_TEXT)
    run.assert_prompt_around_image(model.prompt)  # [gMASK]<sop><|user|>\n … Text Recognition:<|assistant|>\n
    assert run.tokenize("<|begin_of_image|>")[0] in run.text_tokens
    assert run.sampled[-1] == run.tokenize("<|user|>")[0]
    assert run.special == MARKDOWN
    assert run.content == MARKDOWN


@pytest.mark.vlm
@needs_mlx
def test_glm_ocr_mlx_prompt_and_answer(tiny_dir: Path) -> None:
    model = glm_ocr.build("mlx", tiny_dir / "tiny-glm-ocr-mlx")
    prompt, text, _processor, helper = run_mlx(model, glm_ocr.PROMPT_TEXT)
    assert prompt == model.prompt
    assert helper == model.prompt
    assert text.removesuffix("<|user|>") == MARKDOWN


@pytest.mark.vlm
@pytest.mark.parametrize("backend", BACKENDS)
def test_glm_ocr_through_the_engine(backend: str, tiny_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    model = glm_ocr.build(backend, tiny_dir / f"engine-tiny-glm-ocr-{backend}")
    assert_reads_as_the_card_says(model, monkeypatch, "glm-ocr", MARKDOWN, MARKDOWN, "image, then the task")


def test_glm_ocr_family_prompt_and_guess() -> None:
    family = families.get("glm-ocr")
    assert families.guess("GLM-OCR-Q8_0.gguf") is family
    assert families.guess("mlx-community/GLM-OCR-bf16") is family
    assert build_prompt(family, "markdown") == build_prompt(family, "text") == "Text Recognition:"
    assert not family.follows_instructions and family.page_size == 2200
