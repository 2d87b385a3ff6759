"""GLM-OCR through the real runtimes: the tiny fixture (``tests/fixtures/tiny/glm_ocr.py``) on
llama-cpp-python (GGUF ``glm4`` with M-RoPE + mmproj ``glm4v``) and mlx-vlm (``glm_ocr``).

Each test sends the page image then the model card's ``Text Recognition:`` and asserts the rendered prompt
at token level, the recorded answer and that it ended on GLM's end of turn ``<|user|>``.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.fixtures.tiny import TinyModel, glm_ocr
from tests.helpers.tiny_runtimes import needs_llama, needs_mlx, run_engine, run_llama, run_mlx, tokenize

pytestmark = pytest.mark.vlm

EXPECTED_MARKDOWN = "Invoice\n\nTea 3.50"


@pytest.fixture(scope="session")
def tiny_glm_ocr(tmp_path_factory: pytest.TempPathFactory) -> dict[str, TinyModel]:
    root = tmp_path_factory.mktemp("tiny-glm-ocr")
    return {backend: glm_ocr.build(backend, root / f"tiny-glm-ocr-{backend}") for backend in ("llama", "mlx")}


def test_fixture_is_tiny(tiny_glm_ocr: dict[str, TinyModel]) -> None:
    llama, mlx = tiny_glm_ocr["llama"], tiny_glm_ocr["mlx"]
    assert llama.path.stat().st_size + llama.mmproj.stat().st_size < 2_000_000
    assert sum(p.stat().st_size for p in Path(mlx.path).iterdir()) < 2_000_000


@pytest.mark.parametrize("backend", [pytest.param("llama", marks=needs_llama, id="glm-ocr-llama")])
def test_glm_ocr_llama_prompt_and_answer(tiny_glm_ocr: dict[str, TinyModel], backend: str) -> None:
    tiny = tiny_glm_ocr[backend]
    run = run_llama(tiny.path, tiny.mmproj, tiny.prompt, text=glm_ocr.PROMPT_TEXT)
    assert run.prompt == tiny.prompt
    assert run.prompt_tokens == run.expected_tokens
    assert run.raw == tiny.answer  # the text, then <|user|>
    assert run.text == glm_ocr.ANSWER and run.finish == "stop"


@pytest.mark.parametrize("backend", [pytest.param("mlx", marks=needs_mlx, id="glm-ocr-mlx")])
def test_glm_ocr_mlx_prompt_and_answer(tiny_glm_ocr: dict[str, TinyModel], backend: str) -> None:
    tiny = tiny_glm_ocr[backend]
    run = run_mlx(tiny.path, tiny.prompt, text=glm_ocr.PROMPT_TEXT)
    assert run.prompt == tiny.prompt
    assert run.prompt_tokens == run.expected_tokens
    assert run.raw == tiny.answer
    assert run.text == glm_ocr.ANSWER and run.finish == "stop"


BACKENDS = [
    pytest.param("llama", marks=needs_llama, id="glm-ocr-llama"),
    pytest.param("mlx", marks=needs_mlx, id="glm-ocr-mlx"),
]


@pytest.mark.parametrize("backend", BACKENDS)
def test_glm_ocr_end_to_end_through_the_engine(
    tiny_glm_ocr: dict[str, TinyModel], backend: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    tiny = tiny_glm_ocr[backend]
    run = run_engine(f"{backend}:{tiny.path}", monkeypatch)
    assert tokenize(backend, tiny.path, run.prompt) == tokenize(backend, tiny.path, tiny.prompt)
    assert run.raw == glm_ocr.ANSWER  # the runtime ends the answer at the end-of-turn token
    assert run.page.markdown == EXPECTED_MARKDOWN
    assert run.page.fallback is None
