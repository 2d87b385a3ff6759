"""dots.ocr end to end through textdrop's engines on a tiny programmed dots.ocr
(``tests/fixtures/tiny/dots_ocr.py``): llama.cpp (GGUF ``qwen2`` + projector ``dots_ocr`` through
``MTMDChatHandler``) and mlx-vlm (``dots_ocr``). The converter on the recorded real layout answer is in
``tests/test_postprocess.py``.
"""

from __future__ import annotations

from importlib.util import find_spec
from pathlib import Path

import pytest

from tests.fixtures.tiny import TinyModel, dots_ocr
from textdrop.engine import recognize
from textdrop.engine.registry import RecognizeOptions, create_engine
from textdrop.engine.vlm import families
from textdrop.engine.vlm.families.dots_ocr import FAMILY

pytestmark = pytest.mark.vlm

SAMPLE = Path(__file__).parent.parent / "assets" / "samples" / "tess_phototest.tif"
OPTIONS = RecognizeOptions(max_tokens=40, detect_orientation=False)
MARKDOWN = "# Invoice\n\nTea 3.50"
"""What textdrop makes of the fixture's answer: the Title cell as a heading, the Text cell as a paragraph."""
IMAGE = "<|img|><|imgpad|><|endofimg|>"

needs_llama = pytest.mark.skipif(find_spec("llama_cpp") is None, reason="llama-cpp-python is not installed")
needs_mlx = pytest.mark.skipif(find_spec("mlx_vlm") is None, reason="mlx-vlm is not installed")


@pytest.fixture(scope="session")
def dots_models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, TinyModel]:
    """Both builds of the tiny dots.ocr, made once per session."""
    root = tmp_path_factory.mktemp("models")
    return {
        backend: dots_ocr.build(backend, root / f"tiny-dots-ocr-{backend}") for backend in ("llama", "mlx")
    }


def _record_prompt(backend: str, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The prompt text each backend hands its runtime's tokenizer (llama: the media marker shown as the
    ``<|img|>…<|endofimg|>`` that mtmd puts around the image embeddings)."""
    seen: list[str] = []
    if backend == "llama":
        from llama_cpp.llama_chat_format import MTMDChatHandler

        post = MTMDChatHandler._postprocess_template_text

        def record(self, text: str, image_urls: list[str], media_marker: str) -> str:
            out = post(self, text, image_urls, media_marker)
            seen.append(out.replace(media_marker, IMAGE))
            return out

        monkeypatch.setattr(MTMDChatHandler, "_postprocess_template_text", record)
    else:
        import mlx_vlm

        generate = mlx_vlm.stream_generate

        def record_mlx(model, processor, prompt, *args, **kwargs):
            seen.append(prompt)
            return generate(model, processor, prompt, *args, **kwargs)

        monkeypatch.setattr(mlx_vlm, "stream_generate", record_mlx)
    return seen


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
    seen = _record_prompt(backend, monkeypatch)
    engine = create_engine(f"{backend}:{model.path}")
    streamed: list[str] = []
    try:
        result = recognize(SAMPLE, engine=engine, options=OPTIONS, on_text=lambda _, t: streamed.append(t))
        if backend == "llama":
            llm = engine._llm

            def tokens(text: str) -> list[int]:
                return llm.tokenize(text.encode(), add_bos=False, special=True)

            # one token per answer piece, then the end of turn (then <|endoftext|>, which stops decoding)
            n_emitted = len(dots_ocr.ANSWER_PIECES) + 1
            emitted = llm.detokenize(llm._input_ids[llm.n_tokens - n_emitted : llm.n_tokens], special=True)
            assert emitted.decode() == dots_ocr.ANSWER + dots_ocr.END_OF_TURN
        else:
            tokens = engine._processor.tokenizer.encode
        assert [tokens(p) for p in seen] == [tokens(model.prompt.format(prompt=FAMILY.prompts["markdown"]))]
    finally:
        engine.close()
    assert engine.family == "dots-ocr"
    assert streamed[-1] == dots_ocr.ANSWER
    page = result.pages[0]
    assert page.fallback is None and result.engine == backend
    assert page.markdown == MARKDOWN


def test_dots_ocr_family_facts() -> None:
    assert families.guess("rednote-hilab/dots.ocr") is FAMILY
    assert families.guess("dots.ocr-Q8_0.gguf") is FAMILY
    assert FAMILY.prompts["markdown"].startswith("Please output the layout information from the PDF image")
    assert not FAMILY.keep_special and FAMILY.chat_template is None
