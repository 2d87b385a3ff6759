"""The Engine interface every backend implements, and the registry that finds backends by name.

A backend is one module under ``textdrop.engine.ocr`` or ``textdrop.engine.vlm`` that imports its heavy
runtime only inside itself. Built-in backends are registered explicitly in :data:`BUILTIN_ENGINES`, in
order of preference; third-party backends register through the ``textdrop.engines`` entry-point group.
(Pattern from OCRmyPDF's ``OcrEngine`` and NormCap's handler chains.)
"""

from __future__ import annotations

import contextvars
import importlib
import logging
import threading
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from textdrop.engine.errors import EngineUnavailableError

if TYPE_CHECKING:
    from PIL import Image

    from textdrop.engine.result import PageResult

log = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "textdrop.engines"

BUILTIN_ENGINES: dict[str, str] = {
    "rapid": "textdrop.engine.ocr.rapid:RapidEngine",
    "llama": "textdrop.engine.vlm.llama_cpp:LlamaEngine",
    "mlx": "textdrop.engine.vlm.mlx_vlm:MlxEngine",
    "openai": "textdrop.engine.vlm.openai_api:OpenAIEngine",
}
"""Engine name -> ``module:Class``. ``auto`` chooses among them in :mod:`textdrop.engine.registry`."""

Mode = Literal["markdown", "text", "json"]
PdfText = Literal["auto", "layer", "ocr"]


class RecognizeOptions(BaseModel):
    """Per-call recognition options shared by all engines (engines ignore what they do not use)."""

    model_config = ConfigDict(frozen=True)

    detect_orientation: bool = Field(
        True, description="Detect pages scanned sideways or upside down and read them upright."
    )
    layout: bool = Field(
        True,
        description="Line-based engines: read the page through the regions of a layout model (columns, "
        "tables, figures, headers); off: by the geometry of its text lines alone.",
    )
    mode: Mode = Field(
        "markdown",
        description="VLM engines: 'markdown' (tables, formulas in LaTeX), 'text' (plain text in reading "
        "order) or 'json' (key-value extraction, e.g. receipts and invoices).",
    )
    prompt: str | None = Field(None, description="VLM engines: a free prompt that replaces the model's own.")
    fields: tuple[str, ...] = Field((), description="JSON mode: the keys to extract (e.g. total, date).")
    json_schema: dict[str, Any] | None = Field(
        None, description="JSON mode: a JSON Schema the extracted object must be valid against."
    )
    max_tokens: int | None = Field(
        None,
        ge=16,
        le=32768,
        description="VLM engines: output-token budget per page (default: the context and the page).",
    )
    fallback: bool = Field(
        True, description="VLM engines: read a page with the embedded engine when the VLM fails on it."
    )
    languages: tuple[str, ...] = Field(
        (),
        description="Languages of the pages (ISO 639-1 codes such as ru, en, or language pack ids). The "
        "embedded engine reads each line with the recogniser that reads it best (packs: textdrop models "
        "list); general VLMs are told the languages. Empty: the built-in recogniser (Chinese, Japanese, "
        "English and 48 Latin-script languages).",
    )
    pdf_text: PdfText = Field(
        "auto",
        description="PDF pages: 'auto' reads a page from its text layer when it has a usable one and OCRs "
        "the others; 'layer' only ever reads text layers (no OCR); 'ocr' always OCRs the pixels.",
    )
    pages: tuple[int, ...] | None = Field(
        None, description="Read only these pages (1-based numbers; None: every page), in document order."
    )
    box: tuple[int, int, int, int] | None = Field(
        None,
        description="Read only this region of each page: x0, y0, x1, y1 in pixels of the upright page image "
        "(a PDF page as rendered), x1 and y1 exclusive; the result's page is the region.",
    )

    @field_validator("pages", mode="before")
    @classmethod
    def _pages_text(cls, value: Any) -> Any:
        return parse_pages(value) if isinstance(value, str) else value

    @field_validator("pages")
    @classmethod
    def _positive_pages(cls, value: tuple[int, ...] | None) -> tuple[int, ...] | None:
        if value is not None and (not value or min(value) < 1):
            raise ValueError("page numbers start at 1")
        return None if value is None else tuple(sorted(set(value)))

    @field_validator("box", mode="before")
    @classmethod
    def _box_text(cls, value: Any) -> Any:
        return parse_box(value) if isinstance(value, str) else value

    @field_validator("box")
    @classmethod
    def _ordered_box(cls, value: tuple[int, int, int, int] | None) -> tuple[int, int, int, int] | None:
        if value is not None and not (0 <= value[0] < value[2] and 0 <= value[1] < value[3]):
            raise ValueError("a box is x0,y0,x1,y1 in pixels with 0 <= x0 < x1 and 0 <= y0 < y1")
        return value


def parse_pages(text: str) -> tuple[int, ...]:
    """Page numbers from ``"1-3,5"`` (ranges inclusive, 1-based): ``(1, 2, 3, 5)``.

    Raises:
        ValueError: not a comma-separated list of numbers and ``a-b`` ranges, or a range that runs backwards.
    """
    numbers: list[int] = []
    try:
        for part in text.split(","):
            first, dash, last = part.strip().partition("-")
            start, end = int(first), int(last) if dash else int(first)
            if end < start:
                raise ValueError(part)
            numbers.extend(range(start, end + 1))
    except ValueError:
        raise ValueError(f"pages must look like 1-3,5 (page numbers and ranges), not {text!r}") from None
    return tuple(numbers)


def parse_box(text: str) -> tuple[int, int, int, int]:
    """A box from ``"x0,y0,x1,y1"`` (pixels): ``"10,20,300,80"`` → ``(10, 20, 300, 80)``.

    Raises:
        ValueError: not four comma-separated whole numbers.
    """
    parts = text.split(",")
    try:
        if len(parts) != 4:
            raise ValueError(text)
        x0, y0, x1, y1 = (int(part) for part in parts)
    except ValueError:
        raise ValueError(
            f"a box is four pixel numbers x0,y0,x1,y1 (e.g. 0,0,600,200), not {text!r}"
        ) from None
    return x0, y0, x1, y1


ABORT_SCOPE: contextvars.ContextVar[tuple[threading.Event, ...]] = contextvars.ContextVar(
    "textdrop_abort_scope", default=()
)
"""Events that stop the pages of one job only: the job queue sets the job's event around its recognition,
:func:`~textdrop.engine.recognize` adds one of its own for the pages it runs side by side (page threads run
in a copy of the context), and :attr:`Engine.aborted` is true once any is set. An engine that works on
several pages at once (:attr:`Engine.concurrency`) is cancelled this way, one job at a time."""


class GenerationAborted(Exception):
    """Raised by :meth:`Engine.recognize_page` when :meth:`Engine.abort` stopped it mid-page."""


class Engine(ABC):
    """One OCR backend. Lifecycle: construct → :meth:`load` → :meth:`recognize_page` … → :meth:`close`.

    Subclasses set :attr:`name` and :attr:`install_hint`, and implement :meth:`is_available`,
    :meth:`load` and :meth:`recognize_page`. Instances are used from one thread at a time (the job worker
    owns the engine), except that an engine with :attr:`concurrency` above 1 has :meth:`recognize_page`
    called from that many threads at once.
    """

    name: ClassVar[str]
    install_hint: ClassVar[str] = ""
    options_model: ClassVar[type[BaseModel] | None] = None
    """The backend's own settings (a ``[name]`` table in config.toml), or ``None`` when it has none."""
    streams: ClassVar[bool] = False
    """True when :meth:`recognize_page` accepts ``on_text`` and reports text while it generates."""
    model: str | None = None
    """Model identifier written to sidecars; ``None`` for engines with one built-in model."""
    page_size: int | None = None
    """Longest side in pixels the engine wants pages at (PDF pages are rendered at it); ``None``: any."""
    concurrency: int = 1
    """Pages the engine works on at once: 1 for an in-process runtime; a server backend's slots over all
    its endpoints. :func:`~textdrop.engine.recognize` and the job queue keep that many pages in flight."""

    def __init__(self, model: str | None = None, options: BaseModel | None = None) -> None:
        """Args: ``model``: a model id or path for engines that take one; ``options``: the backend's
        :attr:`options_model` (``None``: its defaults).

        Raises:
            EngineUnavailableError: a model was given to an engine with one built-in model.
        """
        if model is not None:
            raise EngineUnavailableError(f"Engine {self.name!r} has one built-in model; drop ':{model}'.")
        self._stop_requested = threading.Event()

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

    def abort(self) -> None:
        """Ask the page being recognised to stop (thread-safe; any thread may call it).

        Streaming engines stop within a token or two and :meth:`recognize_page` raises
        :class:`GenerationAborted`; the engine stays loaded and usable. Other engines finish the page
        (the job queue then stops at the page boundary). :meth:`reset_abort` clears the request.
        """
        self._stop.set()

    @property
    def _stop(self) -> threading.Event:
        stop = self.__dict__.get("_stop_requested")  # a third-party engine may skip Engine.__init__
        return stop if stop is not None else self.__dict__.setdefault("_stop_requested", threading.Event())

    def reset_abort(self) -> None:
        """Forget an earlier :meth:`abort` (called when a new document starts)."""
        self._stop.clear()

    @property
    def aborted(self) -> bool:
        """True after :meth:`abort` until :meth:`reset_abort`, or once the current job's
        :data:`ABORT_SCOPE` is set."""
        if self._stop.is_set():
            return True
        scope = ABORT_SCOPE.get()  # llama.cpp asks between compute steps: thousands of times a page
        return bool(scope) and any(event.is_set() for event in scope)

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


def split_spec(spec: str) -> tuple[str, str | None]:
    """Split an engine spec: ``"llama:granite-docling-258m"`` → ``("llama", "granite-docling-258m")``.

    An engine spec is an engine name, optionally followed by ``:`` and a model (a catalogue id, a local
    path, or a server's model name, which may itself contain ``:``, as Ollama's ``qwen2.5vl:7b`` does).
    """
    name, sep, model = spec.partition(":")
    return name, (model or None) if sep else None


def model_label(ref: str) -> str:
    """How a model is named in results and sidecars: a catalogue id or a server's model as is, a local
    path by its last component (``/models/tiny-qwen2vl-gguf`` → ``tiny-qwen2vl-gguf``)."""
    path = Path(ref)
    return path.name if (path.is_absolute() or len(path.parts) > 1) else ref


def result_identity(spec: str) -> tuple[str, str | None]:
    """The ``(engine, model)`` a result of engine spec ``spec`` records (:attr:`OcrResult.engine`,
    :attr:`OcrResult.model`); ``model`` is ``None`` when the spec names none (the engine's default)."""
    name, model = split_spec(spec)
    return name, model_label(model) if model else None


def resolve_engine_name(name: str | None) -> str:
    """Turn ``None``/``"auto"`` into the best available engine spec; check any other spec's engine exists.

    Raises:
        EngineUnavailableError: the named engine is unknown or not available here (message carries the
            engine's install hint).
    """
    if name in (None, "auto"):
        return choose().spec
    cls = engine_class(split_spec(name)[0])
    if not cls.is_available():
        hint = f" {cls.install_hint}" if cls.install_hint else ""
        raise EngineUnavailableError(f"Engine {cls.name!r} is not available on this machine.{hint}")
    return name


def create_engine(name: str | None = None, backends: Mapping[str, BaseModel] | None = None) -> Engine:
    """Construct (not load) the engine for spec ``name`` (``None``/``"auto"``: the best available).

    Args:
        name: an engine spec (see :func:`split_spec`), ``"auto"`` or ``None``.
        backends: backend settings by engine name (config.toml's ``[llama]``, ``[openai]`` … tables).
    """
    engine_name, model = split_spec(resolve_engine_name(name))
    options = (backends or {}).get(engine_name)
    cls = engine_class(engine_name)
    if model is None and options is None:
        return cls()
    return cls(model=model, options=options)


# ----------------------------------------------------------------------------------------------------------
# auto
# ----------------------------------------------------------------------------------------------------------
# The ``auto`` engine choice: a downloaded VLM where a backend runs it fast here, else the embedded engine.
#
# Order of preference, kept here only (``textdrop doctor`` prints the reasons):
#
# 1. **mlx** on Apple Silicon (Metal), then **llama** with a GPU build (CUDA, Metal, Vulkan): the first
#    whose catalogue models are downloaded, in :func:`~textdrop.engine.models.catalog.ranked` order: quality
#    default, small default, then other downloaded entries by published olmOCR-Bench score (docs/adr/017).
#    A model the user pulled is a model the user wants used.
# 2. Otherwise **rapid**, the embedded engine: on a CPU alone a VLM takes tens of seconds per page where
#    RapidOCR takes one or two, so ``auto`` never picks a VLM without an accelerator; ask for one by name.
#
# The OpenAI-compatible backend is never chosen automatically: a server is something the user names.


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
    from textdrop.engine.models.catalog import default_entry, ranked

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
        from textdrop.engine.models.download import is_downloaded

        entry = next((e for e in ranked(name) if is_downloaded(e, name)), None)
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
