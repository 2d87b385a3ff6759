"""Engines as the tray app shows them: human names for engine specs, and whether a spec can run here.

The menu and the settings dialog show ``llama:granite-docling-258m`` as "llama.cpp · IBM Granite-Docling
258M", and refuse to save quietly a choice that cannot run (its runtime missing, its model not downloaded):
:func:`engine_problem` says what is missing and what to do.
"""

from __future__ import annotations

import logging

from textdrop.engine.errors import TextdropError
from textdrop.engine.models import catalog
from textdrop.engine.registry import engine_class, model_label, split_spec

log = logging.getLogger(__name__)

ENGINE_TITLES = {
    "auto": "Automatic",
    "rapid": "Built-in (CPU)",
    "llama": "llama.cpp",
    "mlx": "MLX",
    "openai": "Server",
}
"""How each engine is named in menus; an engine not listed is shown by its registered name."""


def engine_title(spec: str) -> str:
    """A menu label for an engine spec: ``"rapid"`` → ``"Built-in (CPU)"``, ``"llama:granite-docling-258m"``
    → ``"llama.cpp · IBM Granite-Docling 258M"``, a local model path by its last component."""
    name, model = split_spec(spec)
    title = ENGINE_TITLES.get(name, name)
    if model is None:
        return title
    try:
        model_name = catalog.find_entry(model).title
    except TextdropError:
        model_name = model_label(model)
    return f"{title} · {model_name}"


def engine_problem(spec: str) -> str | None:
    """Why engine spec ``spec`` cannot run on this machine, with what to do; None when it can.

    Checks that the engine is registered, that its runtime is installed (the engine's install hint), and
    for a catalogue model on a local backend that the model is downloaded. ``auto`` always runs (it falls
    back to the built-in engine); a server's model is checked by the server when a job runs.
    """
    name, model = split_spec(spec)
    if name == "auto":
        return None
    try:
        cls = engine_class(name)
    except TextdropError as exc:
        return str(exc)
    if not cls.is_available():
        hint = f" {cls.install_hint}" if cls.install_hint else ""
        return f"{engine_title(name)} is not installed here.{hint}"
    if model is None or name not in catalog.BACKENDS:
        return None
    try:
        entry = catalog.find_entry(model)
    except TextdropError:
        return None  # a local path: the engine checks it when it loads
    from textdrop.engine.models.download import is_downloaded

    if not is_downloaded(entry, name):
        return f"{entry.title} is not downloaded yet: download it on the Models tab."
    return None
