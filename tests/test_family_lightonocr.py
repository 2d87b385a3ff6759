"""LightOnOCR through the real runtimes, on the tiny programmed fixture (tests/fixtures/tiny/lightonocr.py):
GGUF ``qwen3`` + mmproj ``lightonocr`` on llama.cpp, ``mistral3`` with a Qwen3 text model on mlx-vlm. The
page image goes alone, without text; the answer is Markdown ended by ``<|im_end|>``."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.fixtures.tiny import lightonocr
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
from textdrop.engine.vlm.postprocess import clean
from textdrop.engine.vlm.prompts import build_prompt

MARKDOWN = lightonocr.ANSWER
RECORDED = Path(__file__).parent / "data" / "vlm_outputs" / "lightonocr_receipt.md"


@pytest.fixture(scope="session")
def tiny_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("tiny-lightonocr")


@pytest.mark.vlm
def test_lightonocr_fixture_is_tiny(tiny_dir: Path) -> None:
    for backend in ("llama", "mlx"):
        assert fixture_bytes(lightonocr.build(backend, tiny_dir / f"size-{backend}")) < 2_000_000


@pytest.mark.vlm
@needs_llama
def test_lightonocr_llama_prompt_and_end_of_turn(tiny_dir: Path) -> None:
    model = lightonocr.build("llama", tiny_dir / "tiny-lightonocr-llama")
    run = run_llama(model, lightonocr.PROMPT_TEXT)
    # the empty system turn, then the user turn; no text after the image
    run.assert_prompt_around_image(model.prompt)
    assert run.sampled[-1] == run.tokenize("<|im_end|>")[0]
    assert run.special == MARKDOWN
    assert run.content == MARKDOWN


@pytest.mark.vlm
@needs_mlx
def test_lightonocr_mlx_prompt_and_answer(tiny_dir: Path) -> None:
    model = lightonocr.build("mlx", tiny_dir / "tiny-lightonocr-mlx")
    prompt, text, _processor, helper = run_mlx(model, lightonocr.PROMPT_TEXT)
    assert prompt == model.prompt
    assert helper == model.prompt
    assert text.removesuffix("<|im_end|>") == MARKDOWN


@pytest.mark.vlm
@pytest.mark.parametrize("backend", BACKENDS)
def test_lightonocr_through_the_engine(backend: str, tiny_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    model = lightonocr.build(backend, tiny_dir / f"engine-tiny-lightonocr-{backend}")
    assert_reads_as_the_card_says(model, monkeypatch, "lightonocr", MARKDOWN, MARKDOWN, "the image alone")


@pytest.mark.vlm
@pytest.mark.parametrize("backend", BACKENDS)
def test_a_local_lightonocr_gets_the_family_page_size(backend: str, tiny_dir: Path) -> None:
    """A local model named after its family is read at the family's page size (1540 px), on mlx-vlm as on
    llama.cpp, not at the 1024 px of an unknown local model."""
    from textdrop.engine.registry import create_engine

    model = lightonocr.build(backend, tiny_dir / f"size-tiny-lightonocr-{backend}")
    engine = create_engine(f"{backend}:{model.path}")
    engine.load()
    try:
        assert (engine.family, engine.page_size) == ("lightonocr", 1540)
    finally:
        engine.close()


def test_lightonocr_family_prompt_guess_and_recorded_answer() -> None:
    """The page goes alone; a real answer (transformers' integration test, SOURCES.md) stays as it is and
    only the end-of-turn token goes."""
    family = families.get("lightonocr")
    assert families.guess("LightOnOCR-2-1B-Q8_0.gguf") is family
    assert families.guess("mlx-community/LightOnOCR-2-1B-4bit") is family
    assert build_prompt(family, "markdown") == "" and family.page_size == 1540
    answer = RECORDED.read_text(encoding="utf-8")
    assert answer.startswith("Document No : TD01167104\n\nDate : 25/12/2018")
    assert clean("lightonocr", answer + "<|im_end|>") == answer
