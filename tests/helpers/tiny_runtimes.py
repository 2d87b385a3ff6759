"""Run a tiny programmed family model (tests/fixtures/tiny) through the real runtimes, recording what they
tokenized and sampled, for the per-family tests."""

from __future__ import annotations

import base64
import io
from dataclasses import dataclass

from PIL import Image


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
