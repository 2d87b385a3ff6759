"""llama.cpp through llama-cpp-python: a GGUF language model plus its mmproj (the vision encoder).

Images go through ``MTMDChatHandler`` (llama.cpp's libmtmd), which takes the chat template from the GGUF.
By default every layer and the mmproj are offloaded to the GPU when the build has one (CUDA, Metal,
Vulkan): ``n_gpu_layers=-1``; a CPU-only build ignores it. A CUDA build is made with
``CMAKE_ARGS="-DGGML_CUDA=on" pip install llama-cpp-python`` (README, "GPU").

Stopping: llama.cpp calls an abort callback between compute steps; it returns True once
:meth:`~textdrop.engine.registry.Engine.abort` was called, the decode then fails and the
generation ends. The model stays loaded and usable.
"""

from __future__ import annotations

import ctypes
import logging
from collections import deque
from importlib.util import find_spec
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field

from textdrop.engine.errors import ModelError
from textdrop.engine.registry import model_label
from textdrop.engine.vlm import families
from textdrop.engine.vlm.guards import Stream, VlmEngine, context_for, message_content, png_data_url
from textdrop.engine.vlm.prompts import build_prompt

if TYPE_CHECKING:
    from PIL import Image

log = logging.getLogger(__name__)


class LlamaOptions(BaseModel):
    """The ``[llama]`` table of config.toml."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    n_gpu_layers: int = Field(
        -1, ge=-1, description="Layers offloaded to the GPU: -1 all, 0 none (CPU-only builds ignore it)."
    )
    mmproj_on_gpu: bool = Field(True, description="Run the vision encoder (mmproj) on the GPU too.")
    n_ctx: int | None = Field(
        None,
        ge=1024,
        le=131072,
        description="Context in tokens: the image's tokens, the prompt and the answer (default: sized from "
        "the page size, capped by the model's trained context).",
    )
    n_threads: int | None = Field(None, ge=1, description="CPU threads (default: llama.cpp's choice).")
    flash_attn: bool = Field(
        True,
        description="Flash attention in the language model and the vision encoder: far smaller attention "
        "buffers (every llama.cpp backend has it; turn it off only to compare).",
    )
    page_size: int | None = Field(
        None,
        ge=256,
        le=4096,
        description="Longest side in pixels pages are resized to (default: the model family's page size).",
    )


class LlamaEngine(VlmEngine):
    """A GGUF VLM on llama.cpp (CPU, CUDA or Metal)."""

    name = "llama"
    install_hint = "Install it with: pip install 'textdrop[llama]' (CUDA: see the README's GPU section)."
    options_model = LlamaOptions

    def __init__(self, model: str | None = None, options: BaseModel | None = None) -> None:
        super().__init__(model, options)
        self._llm: Any = None
        self._abort_callback: Any = None  # the ctypes callback must outlive the context

    @classmethod
    def is_available(cls) -> bool:
        """True when ``llama_cpp`` is importable (not imported here)."""
        return find_spec("llama_cpp") is not None

    @classmethod
    def accelerator(cls) -> str | None:
        """``"GPU"`` when this llama.cpp build can offload layers (CUDA, Metal, Vulkan), else ``None``."""
        import llama_cpp

        return "GPU" if llama_cpp.llama_supports_gpu_offload() else None

    def _load_model(self) -> None:
        from textdrop.engine.models.catalog import default_entry
        from textdrop.engine.models.download import locate

        ref = self.model_ref or default_entry("llama").id
        local = locate(ref, "llama")
        import llama_cpp
        from llama_cpp.llama_chat_format import MTMDChatHandler

        known = local.family != families.GENERIC
        family = families.get(local.family) if known else families.guess(local.path.name)

        class Handler(MTMDChatHandler):
            """libmtmd's handler, with the family's chat template where the GGUF's stored one is wrong."""

            def _get_chat_template(self, llama_model: Any) -> str:
                return family.chat_template or super()._get_chat_template(llama_model)

        class Llama(llama_cpp.Llama):
            """Detokenizes with the control tokens kept where the family's answer is made of them
            (llama-cpp-python drops them by default: granite-docling's DocTags would become flat words)."""

            def detokenize(self, tokens: Any, prev_tokens: Any = None, special: bool = False) -> bytes:
                return super().detokenize(tokens, prev_tokens, special=special or family.keep_special)

        _route_logs()
        opts: LlamaOptions = self.options
        page_size = opts.page_size or (local.page_size if known else family.page_size)
        context = opts.n_ctx or context_for(
            page_size, build_prompt(family.key, "markdown"), _trained_context(local.path)
        )
        _recent.clear()
        try:
            handler = Handler(clip_model_path=str(local.mmproj), verbose=False, use_gpu=opts.mmproj_on_gpu)
            self._llm = Llama(
                model_path=str(local.path),
                chat_handler=handler,
                n_ctx=context,
                n_gpu_layers=opts.n_gpu_layers,
                n_threads=opts.n_threads,
                flash_attn=opts.flash_attn,
                verbose=False,
            )
            handler._init_mtmd_context(self._llm)  # now, not at the first page: a bad mmproj fails the load
        except (ValueError, RuntimeError) as exc:
            if self._llm is not None:
                self._llm.close()
                self._llm = None
            said = ("; ".join(_recent) or str(exc)).rstrip(".")
            raise ModelError(
                f"llama.cpp cannot load {local.path.name} with {local.mmproj.name if local.mmproj else '?'}: "
                f"{said}. The files may be incomplete (pull them again), not belong together, or need a "
                "newer llama-cpp-python."
            ) from exc
        self._abort_callback = llama_cpp.ggml_abort_callback(lambda _data: self.halted)
        llama_cpp.llama_set_abort_callback(self._llm._ctx.ctx, self._abort_callback, None)
        self.model = model_label(ref)
        self.family = family.key
        self.page_size = page_size
        self.context = context
        log.info(
            "llama: context %d tokens for %d px pages, flash attention %s",
            context,
            page_size,
            "on" if opts.flash_attn else "off",
        )

    def _generate(
        self,
        image: Image.Image,
        prompt: str,
        *,
        max_tokens: int,
        temperature: float,
        json_schema: dict[str, Any] | None = None,
    ) -> Stream:
        content = message_content(png_data_url(image), prompt, self.family_info)
        # A JSON schema becomes a grammar inside llama-cpp-python (constrained decoding).
        response_format = {"type": "json_object", "schema": json_schema} if json_schema is not None else None
        stream = self._llm.create_chat_completion(
            messages=[{"role": "user", "content": content}],
            max_tokens=max_tokens,
            temperature=temperature,
            response_format=response_format,
            stream=True,
        )
        finish = "stop"
        try:
            for part in stream:
                choice = part["choices"][0]
                if text := choice["delta"].get("content"):
                    yield text
                finish = choice.get("finish_reason") or finish
        finally:
            stream.close()
        return finish

    def _close_model(self) -> None:
        if self._llm is not None:
            self._llm.close()
            self._llm = None
            self._abort_callback = None


_log_callback: Any = None  # the ctypes callback must live as long as the library

_ERROR_LEVEL = 4
"""``GGML_LOG_LEVEL_ERROR`` (ggml.h): the level of the lines that say why a load failed."""

_recent: deque[str] = deque(maxlen=4)
"""The last error lines llama.cpp and libmtmd logged: a failed load's own reason (llama-cpp-python only
raises "Failed to load model from file"), put into the :class:`ModelError`."""


def _trained_context(path: Path) -> int | None:
    """The context ``path``'s model was trained with (``n_ctx_train``), read with its vocabulary alone
    (no weights: a few milliseconds); ``None`` when the file cannot be read (the real load then says why)."""
    import llama_cpp

    params = llama_cpp.llama_model_default_params()
    params.vocab_only = True  # the hyperparameters are not read then: ask the metadata
    model = llama_cpp.llama_model_load_from_file(str(path).encode(), params)
    if not model:
        return None
    try:
        buffer = ctypes.create_string_buffer(128)
        if llama_cpp.llama_model_meta_val_str(model, b"general.architecture", buffer, len(buffer)) < 0:
            return None
        key = buffer.value + b".context_length"
        if llama_cpp.llama_model_meta_val_str(model, key, buffer, len(buffer)) < 0:
            return None
        return int(buffer.value) or None
    except ValueError:
        return None
    finally:
        llama_cpp.llama_model_free(model)


def _route_logs() -> None:
    """Send llama.cpp's and libmtmd's messages (``clip_encode: …`` on every image, context warnings) to
    this module's logger at DEBUG instead of stderr, where they would interleave with textdrop's output
    (``-v`` shows them); keep the last error lines in :data:`_recent`. (llama-cpp-python also silences the
    process's stderr while it loads, with ``verbose=False``: this callback is where the reasons go.)"""
    global _log_callback
    if _log_callback is not None:
        return
    import llama_cpp
    import llama_cpp.mtmd_cpp as mtmd

    @llama_cpp.llama_log_callback
    def forward(level: int, text: bytes, _data: ctypes.c_void_p) -> None:
        line = " ".join(text.decode("utf-8", "replace").split())
        if level == _ERROR_LEVEL and line:
            _recent.append(line)
        log.debug("mtmd: %s", line)

    _log_callback = forward
    llama_cpp.llama_log_set(forward, ctypes.c_void_p(0))
    mtmd.mtmd_log_set(forward, ctypes.c_void_p(0))
    mtmd.mtmd_helper_log_set(forward, ctypes.c_void_p(0))
