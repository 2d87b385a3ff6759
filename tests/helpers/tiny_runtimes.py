"""Run a tiny family fixture (``tests/fixtures/tiny``) straight through the real runtimes.

:func:`run_llama` loads the GGUF pair with llama-cpp-python's ``MTMDChatHandler`` and :func:`run_mlx` the
folder with ``mlx_vlm.load``; both send one page image with an optional text part, greedy, and return what
the runtime rendered, tokenized and emitted, so that a family test can compare it with the model card.
"""

from __future__ import annotations

import base64
import io
from dataclasses import dataclass
from importlib.util import find_spec
from pathlib import Path

import pytest
from PIL import Image

from textdrop.engine.result import PageResult

needs_llama = pytest.mark.skipif(find_spec("llama_cpp") is None, reason="llama-cpp-python is not installed")
needs_mlx = pytest.mark.skipif(find_spec("mlx_vlm") is None, reason="mlx-vlm is not installed")


@dataclass(frozen=True)
class Run:
    """One greedy generation.

    Attributes:
        prompt: The prompt text the runtime rendered from the chat template (image placeholder included).
        prompt_tokens: ``prompt`` tokenized with the model's own tokenizer, special tokens parsed.
        expected_tokens: The fixture's model-card prompt tokenized the same way.
        raw: The generated token ids decoded with special tokens kept (end token included).
        text: The text the runtime hands to its caller.
        finish: ``"stop"`` when the model ended the answer itself.
    """

    prompt: str
    prompt_tokens: list[int]
    expected_tokens: list[int]
    raw: str
    text: str
    finish: str


def page() -> Image.Image:
    """A small white page with a dark box (200 x 150 px)."""
    image = Image.new("RGB", (200, 150), "white")
    image.paste((20, 20, 20), (40, 40, 160, 60))
    return image


def _data_url(image: Image.Image) -> str:
    buf = io.BytesIO()
    image.save(buf, "PNG")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def run_llama(model: Path, mmproj: Path, expected_prompt: str, text: str = "", max_tokens: int = 48) -> Run:
    """Generate through ``MTMDChatHandler`` (the image part first, then ``text`` when not empty)."""
    import llama_cpp
    from llama_cpp.llama_chat_format import MTMDChatHandler

    handler = MTMDChatHandler(clip_model_path=str(mmproj), verbose=False)
    rendered: list[str] = []
    original = handler._postprocess_template_text

    def capture(prompt: str, image_urls: list[str], media_marker: str) -> str:
        rendered.append(original(prompt, image_urls, media_marker))
        return rendered[-1]

    handler._postprocess_template_text = capture
    llm = llama_cpp.Llama(model_path=str(model), chat_handler=handler, n_ctx=2048, verbose=False)
    try:
        content = [{"type": "image_url", "image_url": {"url": _data_url(page())}}]
        if text:
            content.append({"type": "text", "text": text})
        ids: list[int] = []
        original_sample = llm.sample

        def sample(*args, **kwargs) -> int:
            ids.append(original_sample(*args, **kwargs))
            return ids[-1]

        llm.sample = sample
        result = llm.create_chat_completion(
            messages=[{"role": "user", "content": content}], max_tokens=max_tokens, temperature=0.0
        )
        raw = llm.detokenize(ids, special=True).decode("utf-8", errors="replace")
        tokenize = llm.tokenize
        prompt = rendered[0]
        return Run(
            prompt=prompt,
            prompt_tokens=tokenize(prompt.encode(), add_bos=False, special=True),
            expected_tokens=tokenize(expected_prompt.encode(), add_bos=False, special=True),
            raw=raw,
            text=result["choices"][0]["message"]["content"],
            finish=result["choices"][0]["finish_reason"],
        )
    finally:
        llm.close()


def run_mlx(folder: Path, expected_prompt: str, text: str = "", max_tokens: int = 48) -> Run:
    """Generate through ``mlx_vlm.load`` / ``stream_generate`` with the folder's own chat template."""
    from mlx_vlm import load, stream_generate

    model, processor = load(str(folder))
    tokenizer = processor.tokenizer
    content: list[dict] = [{"type": "image"}]
    if text:
        content.append({"type": "text", "text": text})
    prompt = tokenizer.apply_chat_template(
        [{"role": "user", "content": content}], tokenize=False, add_generation_prompt=True
    )
    ids: list[int] = []
    pieces: list[str] = []
    for chunk in stream_generate(
        model, processor, prompt, image=[page()], max_tokens=max_tokens, temperature=0.0
    ):
        ids.append(int(chunk.token))
        pieces.append(chunk.text)
    eos: set[int] = set()
    for ids_ in (tokenizer.eos_token_id, getattr(model.config, "eos_token_id", None)):
        eos |= {ids_} if isinstance(ids_, int) else set(ids_ or ())
    return Run(
        prompt=prompt,
        prompt_tokens=tokenizer.encode(prompt, add_special_tokens=False),
        expected_tokens=tokenizer.encode(expected_prompt, add_special_tokens=False),
        raw=tokenizer.decode(ids, skip_special_tokens=False),
        text="".join(pieces),
        finish="stop" if ids and ids[-1] in eos else "length",
    )


SAMPLE = Path(__file__).parent.parent.parent / "assets" / "samples" / "tess_phototest.tif"
"""A scanned text page: the embedded engine's blank-page survey finds text on it, so the VLM reads it."""


@dataclass(frozen=True)
class EngineRun:
    """One page read by textdrop's engine.

    Attributes:
        prompt: The prompt text the runtime rendered (chat template applied, image placeholder included).
        raw: The answer as the backend streamed it, before textdrop's cleanup.
        page: The page result (Markdown, fallback …).
    """

    prompt: str
    raw: str
    page: PageResult


def run_engine(spec: str, monkeypatch: pytest.MonkeyPatch, mode: str = "markdown") -> EngineRun:
    """Read :data:`SAMPLE` with ``create_engine(spec)`` (e.g. ``"llama:/path/model.gguf"``), recording the
    prompt the runtime rendered and the raw answer; the fallback to the embedded engine stays on so that
    the caller can assert it did not happen."""
    from textdrop.engine import recognize
    from textdrop.engine.registry import RecognizeOptions, create_engine

    prompts: list[str] = []
    if spec.startswith("llama:"):
        from llama_cpp.llama_chat_format import MTMDChatHandler

        rendered = MTMDChatHandler._postprocess_template_text

        def capture(self, text: str, image_urls: list[str], media_marker: str) -> str:
            prompts.append(rendered(self, text, image_urls, media_marker))
            return prompts[-1]

        monkeypatch.setattr(MTMDChatHandler, "_postprocess_template_text", capture)
    else:
        import mlx_vlm

        stream = mlx_vlm.stream_generate

        def capture_mlx(model, processor, prompt, *args, **kwargs):
            prompts.append(prompt)
            return stream(model, processor, prompt, *args, **kwargs)

        monkeypatch.setattr(mlx_vlm, "stream_generate", capture_mlx)
    engine = create_engine(spec)
    raws: list[str] = []
    attempt = engine._attempt

    def record(*args, **kwargs):
        raw, cut_at = attempt(*args, **kwargs)
        raws.append(raw)
        return raw, cut_at

    engine._attempt = record
    try:
        result = recognize(SAMPLE, engine=engine, options=RecognizeOptions(mode=mode, max_tokens=48))
    finally:
        engine.close()
    assert len(prompts) == 1 and len(raws) == 1, "the VLM did not read the page exactly once"
    return EngineRun(prompts[0], raws[0], result.pages[0])


def tokenize(backend: str, model: Path, text: str) -> list[int]:
    """``text`` tokenized by the model's own tokenizer, special tokens parsed (llama.cpp's vocabulary of a
    GGUF, or the ``tokenizer.json`` of an MLX folder)."""
    if backend == "llama":
        import llama_cpp

        llm = llama_cpp.Llama(model_path=str(model), vocab_only=True, verbose=False)
        try:
            return llm.tokenize(text.encode(), add_bos=False, special=True)
        finally:
            llm.close()
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(model)).encode(text, add_special_tokens=False)
