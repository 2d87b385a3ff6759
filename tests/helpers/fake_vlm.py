"""A scripted VLM: the real :class:`VlmEngine` guards around a ``_generate`` that replays chunks.

Everything but the model is real: page preparation, the embedded detector's blank-page check and token
cap, the repetition detector on the stream, retries, post-processing, modes and the fallback to the
embedded engine. Each call of ``_generate`` takes the next script from :attr:`ScriptedVlm.scripts`.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from textdrop.engine.vlm.guards import Stream, VlmEngine

if TYPE_CHECKING:
    from PIL import Image

DEFAULT_ANSWER = ["# Invoice\n\n", "Total: ", "12.50"]


@dataclass
class Call:
    """One ``_generate`` call as the engine made it."""

    prompt: str
    max_tokens: int
    temperature: float
    size: tuple[int, int]
    json_schema: dict[str, Any] | None = None
    chunks_sent: int = 0
    closed: bool = False


class ScriptedVlm(VlmEngine):
    """Replays scripts: lists of text chunks; an exception in a script is raised at that point."""

    name = "scripted"
    install_hint = "It is a test double."

    scripts: ClassVar[list[list[str | Exception]]] = []
    calls: ClassVar[list[Call]] = []
    chunk_delay: ClassVar[float] = 0.0
    first_chunk = threading.Event()

    @classmethod
    def reset(cls) -> None:
        cls.scripts, cls.calls, cls.chunk_delay = [], [], 0.0
        cls.first_chunk = threading.Event()

    @classmethod
    def is_available(cls) -> bool:
        return True

    def _load_model(self) -> None:
        self.model = "scripted-model"
        self.family = "generic"
        self.page_size = 1024

    def _generate(
        self,
        image: Image.Image,
        prompt: str,
        *,
        max_tokens: int,
        temperature: float,
        json_schema: dict[str, Any] | None = None,
    ) -> Stream:
        call = Call(prompt, max_tokens, temperature, image.size, json_schema)
        type(self).calls.append(call)
        script = type(self).scripts.pop(0) if type(self).scripts else list(DEFAULT_ANSWER)
        try:
            for chunk in script:
                if isinstance(chunk, Exception):
                    raise chunk
                if self.chunk_delay:
                    time.sleep(self.chunk_delay)
                call.chunks_sent += 1
                type(self).first_chunk.set()
                yield chunk
        finally:
            call.closed = True
        return "stop"
