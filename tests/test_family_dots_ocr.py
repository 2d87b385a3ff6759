"""dots.ocr through the real runtimes: a tiny programmed dots.ocr (``tests/fixtures/tiny/dots_ocr.py``) on
llama-cpp-python (GGUF ``qwen2`` + projector ``dots_ocr`` through ``MTMDChatHandler``) and mlx-vlm
(``dots_ocr``). The converter on the recorded real answer is in ``tests/test_postprocess.py``.
"""

from __future__ import annotations

import base64
from importlib.util import find_spec
from pathlib import Path

import pytest
from PIL import Image

from tests.fixtures.tiny import TinyModel, dots_ocr
from textdrop.engine.postprocess import clean
from textdrop.engine.prompts import DOTS_OCR_LAYOUT

pytestmark = pytest.mark.vlm

MARKDOWN = "# Invoice\n\nTea 3.50"
"""What textdrop makes of the fixture's answer: the Title cell as a heading, the Text cell as a paragraph."""

needs_llama = pytest.mark.skipif(find_spec("llama_cpp") is None, reason="llama-cpp-python is not installed")
needs_mlx = pytest.mark.skipif(find_spec("mlx_vlm") is None, reason="mlx-vlm is not installed")


@pytest.fixture(scope="session")
def dots_models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, TinyModel]:
    """Both builds of the tiny dots.ocr, made once per session."""
    root = tmp_path_factory.mktemp("tiny-dots-ocr")
    return {backend: dots_ocr.build(backend, root / backend) for backend in ("llama", "mlx")}


def _page(path: Path) -> Path:
    Image.new("RGB", (300, 200), "white").save(path)
    return path


@needs_llama
def test_dots_ocr_llama_prompt_answer_and_markdown(dots_models: dict[str, TinyModel], tmp_path: Path) -> None:
    from llama_cpp import Llama
    from llama_cpp.llama_chat_format import MTMDChatHandler

    model = dots_models["llama"]
    handler = MTMDChatHandler(clip_model_path=str(model.mmproj), verbose=False)
    rendered: list[str] = []
    postprocess = handler._postprocess_template_text

    def record(text: str, image_urls: list[str], media_marker: str) -> str:
        out = postprocess(text, image_urls, media_marker)
        rendered.append(out.replace(media_marker, "<|img|><|imgpad|><|endofimg|>"))
        return out

    handler._postprocess_template_text = record
    llm = Llama(model_path=str(model.path), chat_handler=handler, n_ctx=4096, verbose=False)
    url = "data:image/png;base64," + base64.b64encode(_page(tmp_path / "p.png").read_bytes()).decode()
    answer = llm.create_chat_completion(
        messages=[
            {
                "role": "user",
                "content": [
                    {"type": "image_url", "image_url": {"url": url}},
                    {"type": "text", "text": DOTS_OCR_LAYOUT},
                ],
            }
        ],
        max_tokens=40,
        temperature=0.0,
    )["choices"][0]

    def tokens(text: str) -> list[int]:
        return llm.tokenize(text.encode(), add_bos=False, special=True)

    assert tokens(rendered[0]) == tokens(model.prompt.format(prompt=DOTS_OCR_LAYOUT))
    assert answer["finish_reason"] == "stop"  # stopped on <|endoftext|>, not on max_tokens
    n_emitted = len(dots_ocr.ANSWER_PIECES) + 1  # one token per piece, then <|endofassistant|> (then eos)
    emitted = llm.detokenize(llm._input_ids[llm.n_tokens - n_emitted : llm.n_tokens], special=True)
    llm.close()
    assert emitted.decode() == model.answer
    assert answer["message"]["content"] == dots_ocr.ANSWER
    assert clean("dots-ocr", answer["message"]["content"]) == MARKDOWN


@needs_mlx
def test_dots_ocr_mlx_prompt_answer_and_markdown(dots_models: dict[str, TinyModel], tmp_path: Path) -> None:
    from mlx_vlm import load, stream_generate
    from mlx_vlm.prompt_utils import apply_chat_template

    model = dots_models["mlx"]
    mlx_model, processor = load(str(model.path))
    prompt = apply_chat_template(processor, mlx_model.config, DOTS_OCR_LAYOUT, num_images=1)
    encode = processor.tokenizer.encode
    assert encode(prompt) == encode(model.prompt.format(prompt=DOTS_OCR_LAYOUT))
    image = str(_page(tmp_path / "p.png"))
    steps = list(stream_generate(mlx_model, processor, prompt, [image], max_tokens=40, temperature=0.0))
    text = "".join(step.text for step in steps)
    assert text == model.answer
    assert steps[-1].token == processor.tokenizer.convert_tokens_to_ids(dots_ocr.END_OF_TURN)  # an eos
    assert clean("dots-ocr", text) == MARKDOWN
