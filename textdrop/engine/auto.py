"""The ``auto`` engine choice: a downloaded VLM where a backend runs it fast here, else the embedded engine.

Order of preference, kept here only (``textdrop doctor`` prints the reasons):

1. **mlx** on Apple Silicon (Metal), then **llama** with a GPU build (CUDA, Metal, Vulkan): the first
   whose catalogue models are downloaded, quality default first, then small default, then any other
   downloaded entry. A model the user pulled is a model the user wants used.
2. Otherwise **rapid**, the embedded engine: on a CPU alone a VLM takes tens of seconds per page where
   RapidOCR takes one or two, so ``auto`` never picks a VLM without an accelerator; ask for one by name.

The OpenAI-compatible backend is never chosen automatically: a server is something the user names.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from textdrop.engine.backends.base import engine_class

log = logging.getLogger(__name__)

VLM_PREFERENCE = ("mlx", "llama")
"""VLM backends ``auto`` considers, best first."""

EMBEDDED = "rapid"
"""What ``auto`` falls back to (the tests' ``fake_engine`` fixture puts its fake engine here)."""


@dataclass
class Choice:
    """What ``auto`` resolves to, and why.

    Attributes:
        spec: the engine spec, e.g. ``"rapid"`` or ``"llama:granite-docling-258m"``.
        reasons: one line per backend considered, in order, saying why it was taken or passed over.
    """

    spec: str
    reasons: list[str] = field(default_factory=list)


def choose() -> Choice:
    """Resolve ``auto`` on this machine (no model is loaded). Cheapest checks first: runs on every
    ``textdrop ocr`` with the default engine, so the hub cache (huggingface_hub, about 0.2 s to import) is
    looked at only where a backend has an accelerator; llama.cpp's library is imported to ask for one."""
    from textdrop.engine.catalog import CATALOG, default_entry

    choice = Choice(EMBEDDED)
    for name in VLM_PREFERENCE:
        cls = engine_class(name)
        if not cls.is_available():
            choice.reasons.append(f"{name}: not installed. {cls.install_hint}")
            continue
        accelerator = cls.accelerator()  # type: ignore[attr-defined]
        if accelerator is None:
            choice.reasons.append(
                f"{name}: installed, but no GPU here (the embedded engine is quicker on a CPU)"
            )
            continue
        from textdrop.engine.download import is_downloaded

        preferred = [default_entry(name, "quality"), default_entry(name, "small")]
        candidates = preferred + [e for e in CATALOG if e not in preferred]
        usable = [e for e in candidates if getattr(e, "gguf" if name == "llama" else "mlx") is not None]
        entry = next((e for e in usable if is_downloaded(e, name)), None)
        if entry is None:
            small = default_entry(name, "small")
            choice.reasons.append(
                f"{name}: runs on {accelerator}, but no model is downloaded (try: textdrop models pull "
                f"{small.id} --backend {name})"
            )
            continue
        choice.spec = f"{name}:{entry.id}"
        choice.reasons.append(f"{name}: runs on {accelerator} and {entry.id} is downloaded: chosen")
        return choice
    choice.reasons.append(f"{EMBEDDED}: the embedded engine, always available: chosen")
    return choice
