"""LightOnOCR through the real runtimes: the tiny fixture (``tests/fixtures/tiny/lightonocr.py``) on
llama-cpp-python (GGUF ``qwen3`` + mmproj ``lightonocr``) and mlx-vlm (``mistral3`` with a Qwen3 text model).

Each test asserts the rendered prompt is the model card's (the page image alone, no text) at token level,
that the model's recorded Markdown answer comes back whole and that it ended on ``<|im_end|>``.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.fixtures.tiny import TinyModel, lightonocr
from tests.helpers.tiny_runtimes import needs_llama, needs_mlx, run_engine, run_llama, run_mlx, tokenize

pytestmark = pytest.mark.vlm

EXPECTED_MARKDOWN = "# Invoice\n\n| Item | Price |\n| --- | --- |\n| Tea | 3.50 |"


@pytest.fixture(scope="session")
def tiny_lightonocr(tmp_path_factory: pytest.TempPathFactory) -> dict[str, TinyModel]:
    root = tmp_path_factory.mktemp("tiny-lightonocr")
    return {
        backend: lightonocr.build(backend, root / f"tiny-lightonocr-{backend}")
        for backend in ("llama", "mlx")
    }


def test_fixture_is_tiny(tiny_lightonocr: dict[str, TinyModel]) -> None:
    llama, mlx = tiny_lightonocr["llama"], tiny_lightonocr["mlx"]
    assert llama.path.stat().st_size + llama.mmproj.stat().st_size < 2_000_000
    assert sum(p.stat().st_size for p in Path(mlx.path).iterdir()) < 2_000_000


@pytest.mark.parametrize("backend", [pytest.param("llama", marks=needs_llama, id="lightonocr-llama")])
def test_lightonocr_llama_prompt_and_answer(tiny_lightonocr: dict[str, TinyModel], backend: str) -> None:
    tiny = tiny_lightonocr[backend]
    run = run_llama(tiny.path, tiny.mmproj, tiny.prompt)
    assert run.prompt == tiny.prompt
    assert run.prompt_tokens == run.expected_tokens
    assert run.raw == tiny.answer  # Markdown, then <|im_end|>
    assert run.text == lightonocr.ANSWER and run.finish == "stop"


@pytest.mark.parametrize("backend", [pytest.param("mlx", marks=needs_mlx, id="lightonocr-mlx")])
def test_lightonocr_mlx_prompt_and_answer(tiny_lightonocr: dict[str, TinyModel], backend: str) -> None:
    tiny = tiny_lightonocr[backend]
    run = run_mlx(tiny.path, tiny.prompt)
    assert run.prompt == tiny.prompt
    assert run.prompt_tokens == run.expected_tokens
    assert run.raw == tiny.answer
    assert run.text.removesuffix("<|im_end|>") == lightonocr.ANSWER and run.finish == "stop"


BACKENDS = [
    pytest.param("llama", marks=needs_llama, id="lightonocr-llama"),
    pytest.param("mlx", marks=needs_mlx, id="lightonocr-mlx"),
]


@pytest.mark.parametrize("backend", BACKENDS)
def test_lightonocr_end_to_end_through_the_engine(
    tiny_lightonocr: dict[str, TinyModel], backend: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    tiny = tiny_lightonocr[backend]
    run = run_engine(f"{backend}:{tiny.path}", monkeypatch)
    assert tokenize(backend, tiny.path, run.prompt) == tokenize(backend, tiny.path, tiny.prompt)
    assert run.raw == lightonocr.ANSWER  # the runtime ends the answer at the end-of-turn token
    assert run.page.markdown == EXPECTED_MARKDOWN
    assert run.page.fallback is None


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_local_lightonocr_gets_the_family_page_size(
    tiny_lightonocr: dict[str, TinyModel], backend: str
) -> None:
    """A local model file named after its family is read at the family's page size (1540 px), on mlx-vlm as
    on llama.cpp, not at the 1024 px of an unknown local model."""
    from textdrop.engine.registry import create_engine

    engine = create_engine(f"{backend}:{tiny_lightonocr[backend].path}")
    engine.load()
    try:
        assert (engine.family, engine.page_size) == ("lightonocr", 1540)
    finally:
        engine.close()


def test_a_recorded_lightonocr_answer_is_kept_as_markdown() -> None:
    """LightOnOCR answers in Markdown: the converter keeps a real answer as it is (SOURCES.md) and the
    cleanup drops only the end-of-turn token."""
    from textdrop.engine.vlm.postprocess import clean

    answer = (Path(__file__).parent / "data" / "vlm_outputs" / "lightonocr_receipt.md").read_text(
        encoding="utf-8"
    )
    assert answer.startswith("Document No : TD01167104\n\nDate : 25/12/2018")
    assert clean("lightonocr", answer + "<|im_end|>") == answer
