"""The Engine interface every backend implements, and the registry that finds backends by name.

A backend is one module under ``textdrop.engine.backends`` that imports its heavy runtime only inside
itself. Built-in backends are registered explicitly in :data:`BUILTIN_ENGINES`, in order of preference;
third-party backends register through the ``textdrop.engines`` entry-point group. (Pattern from
OCRmyPDF's ``OcrEngine`` and NormCap's handler chains.)
"""

from __future__ import annotations

import importlib
import logging
from abc import ABC, abstractmethod
from importlib.metadata import entry_points
from typing import TYPE_CHECKING, ClassVar

from pydantic import BaseModel, ConfigDict, Field

from textdrop.engine.errors import EngineUnavailableError

if TYPE_CHECKING:
    from PIL import Image

    from textdrop.engine.result import PageResult

log = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "textdrop.engines"

BUILTIN_ENGINES: dict[str, str] = {
    "rapid": "textdrop.engine.backends.rapid:RapidEngine",
}
"""Engine name -> ``module:Class``, in order of preference for ``auto`` (best last is tried last)."""


class RecognizeOptions(BaseModel):
    """Per-call recognition options shared by all engines (engines ignore what they do not use)."""

    model_config = ConfigDict(frozen=True)

    detect_orientation: bool = Field(
        True, description="Detect pages scanned sideways or upside down and read them upright."
    )


class Engine(ABC):
    """One OCR backend. Lifecycle: construct → :meth:`load` → :meth:`recognize_page` … → :meth:`close`.

    Subclasses set :attr:`name` and :attr:`install_hint`, and implement :meth:`is_available`,
    :meth:`load` and :meth:`recognize_page`. Instances are used from one thread at a time (the job worker
    owns the engine).
    """

    name: ClassVar[str]
    install_hint: ClassVar[str] = ""
    model: str | None = None
    """Model identifier written to sidecars; ``None`` for engines with one built-in model."""

    @classmethod
    @abstractmethod
    def is_available(cls) -> bool:
        """True when the runtime is installed and can run on this machine (cheap; imports nothing heavy)."""

    @abstractmethod
    def load(self) -> None:
        """Load models into memory. Idempotent. Raises :class:`EngineUnavailableError` on failure."""

    @abstractmethod
    def recognize_page(self, image: Image.Image, options: RecognizeOptions) -> PageResult:
        """Recognise one page.

        Args:
            image: the page, mode RGB, any size in pixels (engines resize internally as they need).
            options: recognition options.

        Returns:
            The page with ``number`` 1; the caller renumbers it.
        """

    def close(self) -> None:  # noqa: B027 - optional capability with a no-op default
        """Release models and memory. The default does nothing."""

    def __enter__(self) -> Engine:
        self.load()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _entry_point_engines() -> dict[str, str]:
    return {ep.name: ep.value for ep in entry_points(group=ENTRY_POINT_GROUP)}


def engine_names() -> list[str]:
    """Names of all registered engines, built-ins first."""
    return list(BUILTIN_ENGINES) + [n for n in _entry_point_engines() if n not in BUILTIN_ENGINES]


def engine_class(name: str) -> type[Engine]:
    """The Engine class registered under ``name``.

    Raises:
        EngineUnavailableError: no engine of that name is registered, or its module fails to import.
    """
    target = BUILTIN_ENGINES.get(name) or _entry_point_engines().get(name)
    if target is None:
        raise EngineUnavailableError(
            f"Unknown engine {name!r}. Choose one of: auto, {', '.join(engine_names())}."
        )
    module_name, _, class_name = target.partition(":")
    try:
        return getattr(importlib.import_module(module_name), class_name)
    except (ImportError, AttributeError) as exc:
        raise EngineUnavailableError(f"Engine {name!r} cannot be imported: {exc}.") from exc


def resolve_engine_name(name: str | None) -> str:
    """Turn ``None``/``"auto"`` into the best available engine's name; check any other name exists.

    Raises:
        EngineUnavailableError: the named engine is unknown or not available here (message carries the
            engine's install hint).
    """
    if name in (None, "auto"):
        for candidate in reversed(BUILTIN_ENGINES):
            if engine_class(candidate).is_available():
                return candidate
        raise EngineUnavailableError("No OCR engine is available. Reinstall textdrop: pip install textdrop.")
    cls = engine_class(name)
    if not cls.is_available():
        hint = f" {cls.install_hint}" if cls.install_hint else ""
        raise EngineUnavailableError(f"Engine {name!r} is not available on this machine.{hint}")
    return name


def create_engine(name: str | None = None) -> Engine:
    """Construct (not load) the engine named ``name`` (``None``/``"auto"``: the best available)."""
    return engine_class(resolve_engine_name(name))()
