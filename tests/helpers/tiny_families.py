"""Run a tiny programmed model of one family (``tests/fixtures/tiny``) through textdrop's engine.

:func:`build` writes a fixture into a folder (skipping the test when the runtime is not installed or
cannot load the architecture); :func:`read_page` loads it with ``create_engine("<backend>:<path>")`` and
reads one page through :func:`textdrop.engine.recognize`, recording what the runtime really got and gave:
the rendered prompt (spied where the runtime renders its chat template) and the raw streamed answer.
:func:`token_ids` tokenizes text with the fixture's own tokenizer so prompts compare at token level.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from PIL import Image, ImageDraw

from textdrop.engine import recognize
from textdrop.engine.registry import create_engine
from textdrop.engine.result import PageResult

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
RUNTIMES = {"llama": "llama_cpp", "mlx": "mlx_vlm"}
QWEN_IMAGE = "<|vision_start|><|image_pad|><|vision_end|>"
"""The image block of the Qwen-VL chat templates."""


def tiny_module(name: str = "") -> Any:
    """``tests/fixtures/tiny/<name>.py``, or the package itself (the fixtures import as ``tiny``)."""
    if str(FIXTURES) not in sys.path:
        sys.path.insert(0, str(FIXTURES))
    return importlib.import_module(f"tiny.{name}" if name else "tiny")


def build(architecture: str, backend: str, out: Path, family: str, **variant: Any) -> Any:
    """Build the fixture of ``architecture`` for ``backend`` and ``family`` into ``out`` (``variant``: the
    module's extra ``build`` arguments).

    Returns:
        The fixture's :class:`tiny.TinyModel`.
    """
    if importlib.util.find_spec(RUNTIMES[backend]) is None:
        pytest.skip(f"{RUNTIMES[backend]} is not installed (make test installs the [{backend}] extra)")
    tiny = tiny_module()
    try:
        return tiny_module(architecture).build(backend, out, family, **variant)
    except tiny.Unsupported as exc:
        pytest.skip(f"{architecture} on {backend}: {exc}")


@dataclass
class Run:
    """One page read by the engine.

    Attributes:
        page: The page result.
        prompt: The prompt text as the runtime rendered it (llama.cpp: the image placeholder is libmtmd's
            media marker, given in ``marker``; mlx-vlm: ``<|image_pad|>`` before expansion).
        marker: The image placeholder in ``prompt``.
        raw: The answer as the backend streamed it (before any cleanup).
        family: The family key the engine took the model for.
        images: The page image of every generation, in order.
    """

    page: PageResult
    prompt: str
    marker: str
    raw: str
    family: str
    images: list[Image.Image]

    def expected_prompt(self, card_prompt: str, image: str = QWEN_IMAGE) -> str:
        """``card_prompt`` (the fixture's rendered prompt, ``image`` standing for the page) written as the
        runtime gets it: llama-cpp-python renders the image part as libmtmd's marker, and libmtmd adds the
        Qwen projectors' ``<|vision_start|>``/``<|vision_end|>`` around the image embeddings itself
        (tools/mtmd/mtmd.cpp); mlx-vlm renders the template's own image block."""
        return card_prompt.replace(image, self.marker) if self.marker != "<|image_pad|>" else card_prompt


def page_image() -> Image.Image:
    """A small white page with a black title bar (the programmed models ignore its content)."""
    image = Image.new("RGB", (320, 240), "white")
    ImageDraw.Draw(image).rectangle((40, 30, 280, 60), fill="black")
    return image


def read_page(model: Any, monkeypatch: pytest.MonkeyPatch) -> Run:
    """Read :func:`page_image` with ``model`` through ``create_engine`` and ``recognize`` (fallback on,
    so a failing VLM shows as ``page.fallback``)."""
    seen: dict[str, str] = {}
    if model.backend == "llama":
        from llama_cpp.llama_chat_format import MTMDChatHandler

        original = MTMDChatHandler._postprocess_template_text

        def spy(self: Any, text: str, image_urls: list[str], media_marker: str) -> str:
            seen["prompt"] = original(self, text, image_urls, media_marker)
            seen["marker"] = media_marker
            return seen["prompt"]

        monkeypatch.setattr(MTMDChatHandler, "_postprocess_template_text", spy)
    else:
        import mlx_vlm

        original_generate = mlx_vlm.stream_generate

        def spy_generate(model_: Any, processor: Any, prompt: str, *args: Any, **kwargs: Any) -> Any:
            seen["prompt"], seen["marker"] = prompt, "<|image_pad|>"
            return original_generate(model_, processor, prompt, *args, **kwargs)

        monkeypatch.setattr(mlx_vlm, "stream_generate", spy_generate)

    engine = create_engine(f"{model.backend}:{model.path}")
    engine.load()
    chunks: list[str] = []
    images: list[Image.Image] = []
    generate = engine._generate

    def recording_generate(image: Image.Image, *args: Any, **kwargs: Any) -> Any:
        chunks.clear()  # the raw answer of the last generation
        images.append(image)
        stream = generate(image, *args, **kwargs)
        finish = yield from _tee(stream, chunks)
        return finish

    monkeypatch.setattr(engine, "_generate", recording_generate)
    try:
        result = recognize(page_image(), engine=engine)
    finally:
        engine.close()
    return Run(result.pages[0], seen["prompt"], seen["marker"], "".join(chunks), engine.family, images)


def _tee(stream: Any, chunks: list[str]) -> Any:
    finish = None
    try:
        while True:
            chunk = next(stream)
            chunks.append(chunk)
            yield chunk
    except StopIteration as stop:
        finish = stop.value
    return finish


def token_ids(model: Any, text: str) -> list[int]:
    """``text`` tokenized with the fixture's tokenizer, special tokens parsed: the GGUF's own tokenizer
    (llama.cpp, vocabulary only) or the folder's ``tokenizer.json`` (mlx-vlm)."""
    if model.backend == "llama":
        import llama_cpp

        llm = llama_cpp.Llama(model_path=str(model.path), vocab_only=True, verbose=False)
        try:
            return llm.tokenize(text.encode("utf-8"), add_bos=False, special=True)
        finally:
            llm.close()
    from tokenizers import Tokenizer

    return Tokenizer.from_file(str(model.path / "tokenizer.json")).encode(text, add_special_tokens=False).ids
