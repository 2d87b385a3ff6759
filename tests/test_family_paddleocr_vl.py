"""PaddleOCR-VL through the real runtimes: the tiny fixture (``tests/fixtures/tiny/paddleocr_vl.py``) on
llama-cpp-python (GGUF ``paddleocr`` with a SentencePiece vocabulary + mmproj ``paddleocr``) and mlx-vlm
(``paddleocr_vl``).

Each test sends the page image then the task prompt ``OCR:`` and asserts the rendered prompt at token level
(PaddleOCR-VL-1.5's ``…OCR:\\nAssistant:\\n``), the recorded bare-OTSL table answer ended by ``</s>`` and,
through textdrop's engine, the Markdown table it becomes without a fallback.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.fixtures.tiny import TinyModel, paddleocr_vl
from tests.helpers.tiny_runtimes import needs_llama, needs_mlx, run_engine, run_llama, run_mlx, tokenize

pytestmark = pytest.mark.vlm

EXPECTED_MARKDOWN = "| Tea |  |\n| --- | --- |"

BACKENDS = [
    pytest.param("llama", marks=needs_llama, id="paddleocr-vl-llama"),
    pytest.param("mlx", marks=needs_mlx, id="paddleocr-vl-mlx"),
]


@pytest.fixture(scope="session")
def tiny_paddleocr_vl(tmp_path_factory: pytest.TempPathFactory) -> dict[str, TinyModel]:
    root = tmp_path_factory.mktemp("tiny-paddleocr-vl")
    return {
        backend: paddleocr_vl.build(backend, root / f"tiny-paddleocr-vl-{backend}")
        for backend in ("llama", "mlx")
    }


def test_fixture_is_small(tiny_paddleocr_vl: dict[str, TinyModel]) -> None:
    """About 2 MB: mlx-vlm's projector fixes the text width at 1024, so the embeddings dominate."""
    llama, mlx = tiny_paddleocr_vl["llama"], tiny_paddleocr_vl["mlx"]
    assert llama.path.stat().st_size + llama.mmproj.stat().st_size < 2_300_000
    assert sum(p.stat().st_size for p in Path(mlx.path).iterdir()) < 2_300_000


@pytest.mark.parametrize("backend", BACKENDS)
def test_paddleocr_vl_runtime_prompt_and_answer(
    tiny_paddleocr_vl: dict[str, TinyModel], backend: str
) -> None:
    tiny = tiny_paddleocr_vl[backend]
    if backend == "llama":
        run = run_llama(tiny.path, tiny.mmproj, tiny.prompt, text=paddleocr_vl.PROMPT_TEXT)
    else:
        run = run_mlx(tiny.path, tiny.prompt, text=paddleocr_vl.PROMPT_TEXT)
    assert run.prompt == tiny.prompt
    assert run.prompt_tokens == run.expected_tokens
    assert run.raw == tiny.answer  # the OTSL control tokens, then </s>
    assert run.finish == "stop"
    if backend == "llama":  # llama-cpp-python's own decoding drops control tokens: why keep_special exists
        assert run.text == "Tea"
    else:
        assert run.text == paddleocr_vl.ANSWER


@pytest.mark.parametrize("backend", BACKENDS)
def test_paddleocr_vl_end_to_end_through_the_engine(
    tiny_paddleocr_vl: dict[str, TinyModel], backend: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    tiny = tiny_paddleocr_vl[backend]
    run = run_engine(f"{backend}:{tiny.path}", monkeypatch)
    assert tokenize(backend, tiny.path, run.prompt) == tokenize(backend, tiny.path, tiny.prompt)
    assert run.raw == paddleocr_vl.ANSWER  # the OTSL control tokens reach textdrop (keep_special)
    assert run.page.markdown == EXPECTED_MARKDOWN
    assert run.page.fallback is None
