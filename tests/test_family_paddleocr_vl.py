"""PaddleOCR-VL through the real runtimes, on the tiny programmed fixture (tests/fixtures/tiny/
paddleocr_vl.py): GGUF ``paddleocr`` with a SentencePiece vocabulary + mmproj ``paddleocr`` on llama.cpp,
``paddleocr_vl`` on mlx-vlm. The image, then the task prompt ``OCR:`` in PaddleOCR-VL-1.5's template; the
answer is a table in bare OTSL control tokens, ended by ``</s>``, which textdrop turns into Markdown."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.fixtures.tiny import paddleocr_vl
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

TABLE = "| Tea |  |\n| --- | --- |"


@pytest.fixture(scope="session")
def tiny_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("tiny-paddleocr-vl")


@pytest.mark.vlm
def test_paddleocr_vl_fixture_is_small(tiny_dir: Path) -> None:
    """About 2 MB: mlx-vlm's projector fixes the text width at 1024, so the embeddings dominate."""
    for backend in ("llama", "mlx"):
        assert fixture_bytes(paddleocr_vl.build(backend, tiny_dir / f"size-{backend}")) < 2_300_000


@pytest.mark.vlm
@needs_llama
def test_paddleocr_vl_llama_prompt_and_control_tokens(tiny_dir: Path) -> None:
    model = paddleocr_vl.build("llama", tiny_dir / "tiny-paddleocr-vl-llama")
    run = run_llama(model, paddleocr_vl.PROMPT_TEXT)
    # <|begin_of_sentence|>User: (no BOS added) … OCR:\nAssistant:\n
    run.assert_prompt_around_image(model.prompt)
    assert run.tokenize("<|IMAGE_START|>")[0] in run.text_tokens
    assert run.sampled[-1] == run.tokenize("</s>")[0]
    assert run.special == paddleocr_vl.ANSWER  # the OTSL tags, decoded keeping control tokens
    assert run.content == "Tea"  # llama-cpp-python's own decoding drops them: why keep_special exists


@pytest.mark.vlm
@needs_mlx
def test_paddleocr_vl_mlx_prompt_and_answer(tiny_dir: Path) -> None:
    model = paddleocr_vl.build("mlx", tiny_dir / "tiny-paddleocr-vl-mlx")
    prompt, text, _processor, _helper = run_mlx(model, paddleocr_vl.PROMPT_TEXT)
    assert prompt == model.prompt
    assert text.removesuffix("</s>") == paddleocr_vl.ANSWER


@pytest.mark.vlm
@pytest.mark.parametrize("backend", BACKENDS)
def test_paddleocr_vl_through_the_engine(
    backend: str, tiny_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    model = paddleocr_vl.build(backend, tiny_dir / f"engine-tiny-paddleocr-vl-{backend}")
    why = "image, then OCR:"
    # the raw answer keeps the OTSL control tokens (keep_special); the converter makes them a table
    assert_reads_as_the_card_says(model, monkeypatch, "paddleocr-vl", paddleocr_vl.ANSWER, TABLE, why)


def test_paddleocr_vl_family_keeps_special_tokens_and_guesses() -> None:
    family = families.get("paddleocr-vl")
    assert family.keep_special and family.page_size == 1680
    assert families.guess("PaddleOCR-VL-1.5-Q8_0.gguf") is family
    assert families.guess("mlx-community/PaddleOCR-VL-1.5-bf16") is family
