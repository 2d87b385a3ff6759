"""Run a tiny programmed model of one family (``tests/fixtures/tiny``) through textdrop's engine or
straight through its runtime, for the per-family tests.

:func:`build` writes a fixture into a folder (skipping the test when the runtime is not installed or
cannot load the architecture); :func:`read_page` loads it with ``create_engine("<backend>:<path>")`` and
reads one page through :func:`textdrop.engine.recognize`, recording what the runtime really got and gave:
the rendered prompt (llama.cpp: the text ``MTMDChatHandler._postprocess_template_text`` returns; mlx-vlm:
the ``prompt`` argument of ``mlx_vlm.stream_generate``, which textdrop's backend renders with the model's
own chat template) and the raw streamed answer. :func:`token_ids` tokenizes text with the fixture's own
tokenizer so prompts compare at token level. :func:`run_llama` and :func:`run_mlx` run the runtime alone
(no textdrop), to pin what the runtime itself does with the model (e.g. llama-cpp-python's own decoding).
"""

from __future__ import annotations

import base64
import importlib
import importlib.util
import io
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from PIL import Image, ImageDraw

from textdrop.engine import recognize
from textdrop.engine.registry import RecognizeOptions, create_engine
from textdrop.engine.result import PageResult

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
RUNTIMES = {"llama": "llama_cpp", "mlx": "mlx_vlm"}
QWEN_IMAGE = "<|vision_start|><|image_pad|><|vision_end|>"
"""The image block of the Qwen-VL chat templates."""

needs_llama = pytest.mark.skipif(
    importlib.util.find_spec("llama_cpp") is None, reason="llama-cpp-python is not installed"
)
needs_mlx = pytest.mark.skipif(importlib.util.find_spec("mlx_vlm") is None, reason="mlx-vlm is not installed")
BACKENDS = [pytest.param("llama", marks=needs_llama), pytest.param("mlx", marks=needs_mlx)]
"""``backend`` parameters, each skipped where its runtime is not installed."""


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
        prompt_ids: mlx-vlm only: the ids its ``stream_generate`` makes of ``prompt`` (special tokens added
            where mlx-vlm adds them, as ``mlx_vlm.utils.should_add_special_tokens`` decides).
        engine: The engine the result names (``OcrResult.engine``).
    """

    page: PageResult
    prompt: str
    marker: str
    raw: str
    family: str
    images: list[Image.Image]
    prompt_ids: list[int] = field(default_factory=list)
    engine: str = ""

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


def read_page(
    model: Any,
    monkeypatch: pytest.MonkeyPatch,
    options: RecognizeOptions | None = None,
    inspect: Callable[[Any], None] | None = None,
) -> Run:
    """Read :func:`page_image` with ``model`` through ``create_engine`` and ``recognize`` (fallback on,
    so a failing VLM shows as ``page.fallback``).

    Args:
        options: Recognition options (default: textdrop's).
        inspect: Called with the engine after the page, before the engine closes (to look at the runtime).
    """
    seen: dict[str, Any] = {}
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
        from mlx_vlm.utils import should_add_special_tokens

        original_generate = mlx_vlm.stream_generate

        def spy_generate(model_: Any, processor: Any, prompt: str, *args: Any, **kwargs: Any) -> Any:
            seen["prompt"], seen["marker"] = prompt, "<|image_pad|>"
            add = should_add_special_tokens(model_.config.model_type, processor)
            seen["ids"] = processor.tokenizer(prompt, add_special_tokens=add)["input_ids"]
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
        result = recognize(page_image(), engine=engine, options=options)
        if inspect is not None:
            inspect(engine)
    finally:
        engine.close()
    return Run(
        result.pages[0],
        seen["prompt"],
        seen["marker"],
        "".join(chunks),
        engine.family,
        images,
        seen.get("ids", []),
        result.engine,
    )


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


@dataclass
class LlamaRun:
    """What llama-cpp-python did with one chat completion.

    Attributes:
        text_tokens: The prompt's text tokens as evaluated (image embeddings left out), in order.
        sampled: The sampled token ids, end-of-generation token included.
        content: The message content llama-cpp-python returned (its own detokenization).
        special: The sampled tokens before the end-of-generation token, detokenized keeping control tokens.
        tokenize: The model's tokenizer (``str -> list[int]``, special tokens parsed, no BOS added).
    """

    text_tokens: list[int]
    sampled: list[int]
    content: str
    special: str
    tokenize: object

    def assert_prompt_around_image(self, prompt: str) -> None:
        """Assert that the evaluated text tokens start with the tokens of ``prompt``'s text before its
        ``<__media__>`` marker and end with those of its text after it (the chat template as rendered)."""
        before, after = prompt.split("<__media__>")
        head, tail = self.tokenize(before), self.tokenize(after)
        assert self.text_tokens[: len(head)] == head, (self.text_tokens[: len(head)], head)
        assert self.text_tokens[-len(tail) :] == tail, (self.text_tokens[-len(tail) :], tail)


def run_llama(model, prompt_text: str) -> LlamaRun:
    """One greedy chat completion (image, then ``prompt_text``) through ``MTMDChatHandler``."""
    import llama_cpp
    from llama_cpp.llama_chat_format import MTMDChatHandler

    handler = MTMDChatHandler(clip_model_path=str(model.mmproj), verbose=False)
    llm = llama_cpp.Llama(model_path=str(model.path), chat_handler=handler, n_ctx=2048, verbose=False)
    evaluated: list[int] = []
    sampled: list[int] = []
    eval_, sample_ = llm.eval, llm.sample

    def eval_recording(tokens):
        if not sampled:
            evaluated.extend(tokens)
        return eval_(tokens)

    def sample_recording(*args, **kwargs):
        token = sample_(*args, **kwargs)
        sampled.append(int(token))
        return token

    llm.eval, llm.sample = eval_recording, sample_recording
    buf = io.BytesIO()
    page_image().save(buf, "PNG")
    url = "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()
    reply = llm.create_chat_completion(
        messages=[
            {
                "role": "user",
                "content": [
                    {"type": "image_url", "image_url": {"url": url}},
                    {"type": "text", "text": prompt_text},
                ],
            }
        ],
        max_tokens=64,
        temperature=0.0,
    )
    body = (
        sampled[:-1] if sampled and llama_cpp.llama_vocab_is_eog(llm._model.vocab, sampled[-1]) else sampled
    )
    special = llm.detokenize(body, special=True).decode("utf-8")
    return LlamaRun(
        text_tokens=evaluated,
        sampled=sampled,
        content=reply["choices"][0]["message"]["content"],
        special=special,
        tokenize=lambda text: llm.tokenize(text.encode("utf-8"), add_bos=False, special=True),
    )


def run_mlx(model, prompt_text: str) -> tuple[str, str, object, str]:
    """One greedy generation with mlx-vlm: ``(rendered prompt, answer text, processor, helper prompt)``.

    The prompt is the model's chat template (which mlx-vlm's ``load`` puts on the tokenizer) applied to one
    user turn of image then text; ``helper prompt`` is what ``mlx_vlm.prompt_utils.apply_chat_template``
    (the helper textdrop's mlx backend calls) renders for the same text.
    """
    from mlx_vlm import generate, load
    from mlx_vlm.prompt_utils import apply_chat_template

    mlx_model, processor = load(str(model.path))
    messages = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": prompt_text}]}]
    prompt = processor.tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    helper = apply_chat_template(processor, mlx_model.config, prompt_text, num_images=1)
    result = generate(
        mlx_model, processor, prompt, image=[page_image()], max_tokens=64, temperature=0.0, verbose=False
    )
    return prompt, getattr(result, "text", result), processor, helper


def fixture_bytes(model: Any) -> int:
    """The bytes a built fixture takes: GGUF model + mmproj (llama) or the whole folder (mlx)."""
    if model.mmproj is not None:
        return model.path.stat().st_size + model.mmproj.stat().st_size
    return sum(p.stat().st_size for p in model.path.iterdir())


def assert_reads_as_the_card_says(
    model: Any, monkeypatch: pytest.MonkeyPatch, family: str, raw: str, markdown: str, why: str
) -> Run:
    """Read a page with ``model`` through the engine and assert what every family test asserts: the family
    taken, the model card's prompt at token level (``why`` says what the card's prompt is), the raw answer
    ``raw`` with its control tokens, the converted ``markdown``, and no fallback."""
    run = read_page(model, monkeypatch)
    assert run.family == family
    card = token_ids(model, model.prompt)
    assert token_ids(model, run.prompt) == card, f"not the model card's prompt ({why})"
    if model.backend == "mlx":  # as mlx-vlm tokenizes it (special tokens added where mlx-vlm adds them)
        assert run.prompt_ids == card
    assert run.raw == raw
    assert run.page.markdown == markdown
    assert run.page.fallback is None
    return run
