"""dots.ocr end to end through textdrop's engines on a tiny programmed dots.ocr
(``tests/fixtures/tiny/dots_ocr.py``): llama.cpp (GGUF ``qwen2`` + projector ``dots_ocr`` through
``MTMDChatHandler``) and mlx-vlm (``dots_ocr``). The converter on the recorded real layout answer is in
``tests/test_postprocess.py``.
"""

from __future__ import annotations

import pytest

from tests.fixtures.tiny import TinyModel, dots_ocr
from tests.helpers.tiny_families import needs_llama, needs_mlx, read_page, token_ids
from textdrop.engine.registry import RecognizeOptions
from textdrop.engine.vlm import families
from textdrop.engine.vlm.families.dots_ocr import FAMILY

pytestmark = pytest.mark.vlm

OPTIONS = RecognizeOptions(max_tokens=40, detect_orientation=False)
MARKDOWN = "# Invoice\n\nTea 3.50"
"""What textdrop makes of the fixture's answer: the Title cell as a heading, the Text cell as a paragraph."""
IMAGE = "<|img|><|imgpad|><|endofimg|>"


@pytest.fixture(scope="session")
def dots_models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, TinyModel]:
    """Both builds of the tiny dots.ocr, made once per session."""
    root = tmp_path_factory.mktemp("models")
    return {
        backend: dots_ocr.build(backend, root / f"tiny-dots-ocr-{backend}") for backend in ("llama", "mlx")
    }


@pytest.mark.parametrize(
    "backend",
    [
        pytest.param("llama", marks=needs_llama, id="dots-ocr-llama"),
        pytest.param("mlx", marks=needs_mlx, id="dots-ocr-mlx"),
    ],
)
def test_dots_ocr_end_to_end(
    backend: str, dots_models: dict[str, TinyModel], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The engine sends dots.ocr's layout prompt in its chat format (checked as token ids), streams the
    layout JSON, converts it to Markdown, and the page is the VLM's, not a fallback's."""
    model = dots_models[backend]
    emitted: list[str] = []

    def last_tokens(engine) -> None:
        # one token per answer piece, then the end of turn (then <|endoftext|>, which stops decoding)
        llm, n = engine._llm, len(dots_ocr.ANSWER_PIECES) + 1
        emitted.append(llm.detokenize(llm._input_ids[llm.n_tokens - n : llm.n_tokens], special=True).decode())

    run = read_page(model, monkeypatch, OPTIONS, last_tokens if backend == "llama" else None)
    # llama: mtmd puts <|img|>…<|endofimg|> around the image embeddings at the media marker
    prompt = run.prompt.replace(run.marker, IMAGE) if backend == "llama" else run.prompt
    assert token_ids(model, prompt) == token_ids(
        model, model.prompt.format(prompt=FAMILY.prompts["markdown"])
    )
    if backend == "llama":
        assert emitted == [dots_ocr.ANSWER + dots_ocr.END_OF_TURN]
    assert run.family == "dots-ocr"
    assert run.raw == dots_ocr.ANSWER
    assert run.page.fallback is None and run.engine == backend
    assert run.page.markdown == MARKDOWN


def test_dots_ocr_family_facts() -> None:
    assert families.guess("rednote-hilab/dots.ocr") is FAMILY
    assert families.guess("dots.ocr-Q8_0.gguf") is FAMILY
    assert FAMILY.prompts["markdown"].startswith("Please output the layout information from the PDF image")
    assert not FAMILY.keep_special and FAMILY.chat_template is None
