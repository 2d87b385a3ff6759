"""mlx-vlm: VLMs in MLX format, on Apple Silicon's GPU through Metal.

On Linux the same code runs on the CPU when mlx is installed as ``mlx[cpu]`` (bare ``mlx`` does not
import there); the tests use that, and ``auto`` never picks it there because it is slow.
"""

from __future__ import annotations

import logging
from importlib.util import find_spec
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field

from textdrop.engine.errors import ModelError
from textdrop.engine.registry import model_label
from textdrop.engine.vlm import families
from textdrop.engine.vlm.guards import Stream, VlmEngine, message_content

if TYPE_CHECKING:
    from PIL import Image

log = logging.getLogger(__name__)


class MlxOptions(BaseModel):
    """The ``[mlx]`` table of config.toml."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    page_size: int | None = Field(
        None,
        ge=256,
        le=4096,
        description="Longest side in pixels pages are resized to (default: the model family's page size).",
    )


class MlxEngine(VlmEngine):
    """An MLX VLM through mlx-vlm (Metal on Apple Silicon, CPU elsewhere)."""

    name = "mlx"
    install_hint = "Install it with: pip install 'textdrop[mlx]'."
    options_model = MlxOptions

    def __init__(self, model: str | None = None, options: BaseModel | None = None) -> None:
        super().__init__(model, options)
        self._model: Any = None
        self._processor: Any = None

    @classmethod
    def is_available(cls) -> bool:
        """True when ``mlx_vlm`` and ``mlx`` are importable (not imported here)."""
        return find_spec("mlx_vlm") is not None and find_spec("mlx") is not None

    @classmethod
    def accelerator(cls) -> str | None:
        """``"Metal"`` on Apple Silicon, else ``None`` (mlx then runs on the CPU)."""
        from textdrop.engine.models.catalog import is_apple_silicon

        return "Metal" if is_apple_silicon() else None

    def _load_model(self) -> None:
        from textdrop.engine.models.catalog import default_entry
        from textdrop.engine.models.download import locate

        ref = self.model_ref or default_entry("mlx").id
        local = locate(ref, "mlx")
        try:
            from mlx_vlm import load

            self._model, self._processor = load(str(local.path))
        except Exception as exc:  # mlx-vlm raises what its loaders raise (safetensors, transformers, mlx)
            said = str(exc).rstrip(".")
            raise ModelError(
                f"mlx-vlm cannot load {local.path}: {type(exc).__name__}: {said}. The folder may be "
                "incomplete (pull it again) or need a newer mlx-vlm."
            ) from exc
        known = local.family != families.GENERIC
        family = families.get(local.family) if known else families.guess(local.path.name)
        self.model = model_label(ref)
        self.family = family.key
        self.page_size = self.options.page_size or (local.page_size if known else family.page_size)

    def _generate(
        self,
        image: Image.Image,
        prompt: str,
        *,
        max_tokens: int,
        temperature: float,
        json_schema: dict[str, Any] | None = None,
    ) -> Stream:
        """mlx-vlm has no constrained decoding: ``json_schema`` is left to the validation and retry."""
        from mlx_vlm import stream_generate

        formatted = self._single_bos(self._chat_prompt(prompt))
        finish = "stop"
        for response in stream_generate(
            self._model,
            self._processor,
            formatted,
            image=[image],
            max_tokens=max_tokens,
            temperature=temperature,
        ):
            if response.text:
                yield response.text
            finish = response.finish_reason or finish
        return finish

    def _chat_prompt(self, prompt: str) -> str:
        """The model's own chat template applied to one user message of the page image and ``prompt`` in
        the family's order (image first, text first for olmOCR; no text part for an empty prompt), as
        llama.cpp renders it too. mlx-vlm's ``apply_chat_template`` helper picks the order per
        architecture instead (Gemma 3: text, then image, against its model card); a model folder without
        a chat template gets the helper's rendering."""
        tokenizer = getattr(self._processor, "tokenizer", self._processor)
        if not getattr(tokenizer, "chat_template", None):
            from mlx_vlm.prompt_utils import apply_chat_template

            return apply_chat_template(self._processor, self._model.config, prompt, num_images=1)
        messages = [{"role": "user", "content": message_content(None, prompt, self.family_info)}]
        return tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)

    def _single_bos(self, formatted: str) -> str:
        """``formatted`` without the BOS text the chat template wrote, where mlx-vlm's tokenization adds a
        BOS too: else the model reads two (Gemma 3's template writes ``<bos>``, and mlx-vlm 0.7.10 adds
        special tokens for it because its ``Gemma3Processor`` carries no chat template of its own; a doubled
        BOS degrades Gemma's answers). llama.cpp keeps one by itself."""
        from mlx_vlm.utils import should_add_special_tokens

        tokenizer = getattr(self._processor, "tokenizer", self._processor)
        bos = getattr(tokenizer, "bos_token", None)
        if not bos or not formatted.startswith(bos):
            return formatted
        if not should_add_special_tokens(self._model.config.model_type, self._processor):
            return formatted
        if tokenizer("", add_special_tokens=True)["input_ids"][:1] != [tokenizer.bos_token_id]:
            return formatted
        return formatted.removeprefix(bos)

    def _close_model(self) -> None:
        self._model = self._processor = None
        import mlx.core as mx

        mx.clear_cache()
