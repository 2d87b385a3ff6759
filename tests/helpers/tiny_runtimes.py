"""Run a tiny programmed family model (tests/fixtures/tiny) through the real runtimes, recording what they
tokenized and sampled, for the per-family tests."""

from __future__ import annotations

import base64
import io
from dataclasses import dataclass
from importlib.util import find_spec
from pathlib import Path

import pytest
from PIL import Image

needs_llama = pytest.mark.skipif(find_spec("llama_cpp") is None, reason="llama-cpp-python is not installed")
needs_mlx = pytest.mark.skipif(find_spec("mlx_vlm") is None, reason="mlx-vlm is not installed")
BACKENDS = [pytest.param("llama", marks=needs_llama), pytest.param("mlx", marks=needs_mlx)]
"""``backend`` parameters, each skipped where its runtime is not installed."""


def page() -> Image.Image:
    """A small white page (300 x 200 pixels): the programmed answer does not depend on the image."""
    return Image.new("RGB", (300, 200), "white")


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
    page().save(buf, "PNG")
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
        mlx_model, processor, prompt, image=[page()], max_tokens=64, temperature=0.0, verbose=False
    )
    return prompt, getattr(result, "text", result), processor, helper


SAMPLE = Path(__file__).resolve().parent.parent.parent / "assets" / "samples" / "tess_phototest.tif"
"""A real scanned page (the blank-page guard would skip a white one)."""


@dataclass
class EngineRun:
    """One page through textdrop's engine on a tiny family model.

    Attributes:
        page: The page result.
        raw: The answer as the backend streamed it (before the family converter).
        prompt_ids: The prompt's text tokens as the runtime evaluated them (llama.cpp) or the ids mlx-vlm
            makes of the rendered prompt before it expands the image placeholder.
        expected_ids: The fixture's recorded prompt (the model card's) tokenized the same way; for llama.cpp
            ``(before the image, after the image)``.
        family: The family key the engine settled on.
    """

    page: object
    raw: str
    prompt_ids: list[int]
    expected_ids: object
    family: str


def run_engine(model, monkeypatch) -> EngineRun:
    """Recognize :data:`SAMPLE` with ``create_engine("<backend>:<fixture path>")``, the family found from
    the file name as for any local model, recording the prompt and the raw answer."""
    from textdrop.engine import recognize
    from textdrop.engine.registry import create_engine

    engine = create_engine(f"{model.backend}:{model.path}")
    engine.load()
    raw: list[str] = []
    generate = engine._generate

    def tee(*args, **kwargs):
        stream = generate(*args, **kwargs)
        while True:
            try:
                chunk = next(stream)
            except StopIteration as stop:
                return stop.value
            if isinstance(chunk, str):
                raw.append(chunk)
            yield chunk

    monkeypatch.setattr(engine, "_generate", tee)
    prompt_ids: list[int] = []
    try:
        if model.backend == "llama":
            llm = engine._llm
            eval_, sample_ = llm.eval, llm.sample
            sampling: list[bool] = []

            def eval_recording(tokens):
                if not sampling:
                    prompt_ids.extend(tokens)
                return eval_(tokens)

            def sample_recording(*args, **kwargs):
                sampling.append(True)
                return sample_(*args, **kwargs)

            monkeypatch.setattr(llm, "eval", eval_recording)
            monkeypatch.setattr(llm, "sample", sample_recording)
            before, after = model.prompt.split("<__media__>")

            def tokenize(text: str) -> list[int]:
                return llm.tokenize(text.encode("utf-8"), add_bos=False, special=True)

            expected: object = (tokenize(before), tokenize(after))
        else:
            import mlx_vlm
            from mlx_vlm.utils import should_add_special_tokens

            stream_generate = mlx_vlm.stream_generate
            tokenizer = engine._processor.tokenizer

            def recording(mlx_model, processor, prompt, *args, **kwargs):
                # tokenized as mlx-vlm's generate does (it adds special tokens unless the template owns them)
                add = should_add_special_tokens(mlx_model.config.model_type, processor)
                prompt_ids.extend(tokenizer(prompt, add_special_tokens=add)["input_ids"])
                return stream_generate(mlx_model, processor, prompt, *args, **kwargs)

            monkeypatch.setattr(mlx_vlm, "stream_generate", recording)
            expected = tokenizer(model.prompt, add_special_tokens=False)["input_ids"]
        result = recognize(SAMPLE, engine=engine)
        family = engine.family
    finally:
        engine.close()
    return EngineRun(result.pages[0], "".join(raw), prompt_ids, expected, family)
