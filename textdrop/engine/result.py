"""The result of recognising one document: pages of lines with pixel boxes, Markdown and plain text.

Every engine returns these types. Line-based engines (the embedded RapidOCR backend) fill ``lines`` and
let :mod:`textdrop.engine.ocr.layout` build ``markdown`` and ``text``; VLM engines produce Markdown directly
and may leave ``lines`` empty.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

PAGE_SEPARATOR = "<!-- page {number} -->"
"""Marker between the pages of a multi-page document in Markdown output (DESIGN.md, sidecar format)."""


@dataclass(frozen=True)
class Line:
    """One recognised text line.

    Attributes:
        text: the recognised text, without a trailing newline.
        bbox: axis-aligned box ``(x0, y0, x1, y1)`` in pixels of the upright page image
            (see :attr:`PageResult.rotation`), x to the right, y down, ``x1``/``y1`` exclusive.
        confidence: the recogniser's score, 0..1.
    """

    text: str
    bbox: tuple[int, int, int, int]
    confidence: float

    @property
    def height(self) -> int:
        """Box height in pixels."""
        return self.bbox[3] - self.bbox[1]

    @property
    def width(self) -> int:
        """Box width in pixels."""
        return self.bbox[2] - self.bbox[0]


@dataclass
class PageResult:
    """One page of a document.

    Attributes:
        number: 1-based page number within the document.
        width: width in pixels of the upright page image the boxes refer to.
        height: height in pixels of the upright page image.
        rotation: clockwise rotation in degrees (0, 90, 180, 270) applied to the input page to make it
            upright; boxes are in the rotated page's pixels.
        lines: recognised lines in reading order (empty for engines without boxes).
        markdown: the page as Markdown.
        text: the page as plain text in reading order, no Markdown syntax.
        seconds: wall-clock seconds spent recognising this page.
        notes: free-form remarks about how the page was read (a blank page skipped, a retried loop).
        fallback: ``"<engine>: <reason>"`` when a VLM failed on the page (or could not be loaded) and
            another engine read it; ``None`` when the engine asked for read it.
        engine: the name of the engine that produced the page (``"rapid"`` for a fallback page; ``None``
            for a page read from a PDF text layer, or before :func:`~textdrop.engine.recognize` set it).
        data: JSON mode: the key-value object extracted from the page (``None`` in other modes).
        truncated: True when the VLM's answer reached the page's output budget (the text may be
            incomplete; ``notes`` says at how many tokens).
        layout: how a line-based engine ordered the page: ``"regions"`` (the layout model's regions),
            ``"lines"`` (the geometry of its lines: the layout step was on but the page too small for the
            model, or without text) or ``"off"`` (its lines, the layout step turned off); ``None`` for
            engines without line boxes.
        text_source: for a PDF page, ``"layer"`` (read from its text layer) or ``"ocr"``; ``None`` for images.
        warnings: problems the user should know of (text found that no installed language pack reads,
            a page without a text layer read with ``pdf_text = "layer"``).
    """

    number: int
    width: int
    height: int
    markdown: str
    text: str
    lines: list[Line] = field(default_factory=list)
    rotation: int = 0
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)
    fallback: str | None = None
    engine: str | None = None
    data: Any = None
    truncated: bool = False
    layout: str | None = None
    text_source: str | None = None
    warnings: list[str] = field(default_factory=list)


@dataclass
class OcrResult:
    """A recognised document.

    Attributes:
        pages: the pages in document order.
        engine: name of the engine that produced the result (e.g. ``"rapid"``).
        model: the model identifier, or ``None`` for engines with a single built-in model.
        source: the source's file name, or ``None`` for image data without a file.
        sha256: hex SHA-256 of the source bytes, or ``None`` for an in-memory image.
        load_seconds: seconds spent loading the engine for this call (0 when it was already loaded).
        seconds: wall-clock seconds for the whole document, decoding and recognition included.
    """

    pages: list[PageResult]
    engine: str
    model: str | None = None
    source: str | None = None
    sha256: str | None = None
    load_seconds: float = 0.0
    seconds: float = 0.0

    @property
    def markdown(self) -> str:
        """All pages as Markdown; each page after the first is preceded by ``<!-- page N -->``."""
        if len(self.pages) == 1:
            return self.pages[0].markdown
        parts = []
        for page in self.pages:
            if page.number > 1:
                parts.append(PAGE_SEPARATOR.format(number=page.number))
            parts.append(page.markdown)
        return "\n\n".join(p for p in parts if p).strip() + "\n"

    @property
    def fallbacks(self) -> dict[int, str]:
        """Page number -> ``"<engine>: <reason>"`` for every page another engine read (empty: none did)."""
        return {page.number: page.fallback for page in self.pages if page.fallback}

    def fallback_notes(self) -> list[str]:
        """One line per page another engine read, for logs, summaries and notifications:
        ``"page 2 was read by rapid: <reason>"``."""
        return [f"page {number} was read by {reason}" for number, reason in self.fallbacks.items()]

    @property
    def truncated_pages(self) -> list[int]:
        """Numbers of the pages whose VLM answer reached the output budget (maybe incomplete)."""
        return [page.number for page in self.pages if page.truncated]

    @property
    def warnings(self) -> list[str]:
        """The pages' warnings, each once, in page order."""
        return list(dict.fromkeys(warning for page in self.pages for warning in page.warnings))

    def text_sources(self) -> dict[str, list[int]]:
        """Page numbers by text source (``{"layer": [1, 2], "ocr": [3]}``); empty when no page is a PDF's."""
        sources: dict[str, list[int]] = {}
        for page in self.pages:
            if page.text_source is not None:
                sources.setdefault(page.text_source, []).append(page.number)
        return sources

    @property
    def text(self) -> str:
        """All pages as plain text in reading order, pages separated by a form feed (U+000C)."""
        return "\f".join(page.text.rstrip("\n") + "\n" for page in self.pages)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable dict of the whole result, boxes included."""
        data = asdict(self)
        for page in data["pages"]:
            for line in page["lines"]:
                line["bbox"] = list(line["bbox"])
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> OcrResult:
        """The result that :meth:`to_dict` produced ``data`` from (the watcher's ledger stores it this way).

        Raises:
            KeyError, TypeError: ``data`` lacks a field or has one of the wrong shape.
        """
        pages = []
        for page in data["pages"]:
            lines = [Line(line["text"], tuple(line["bbox"]), line["confidence"]) for line in page["lines"]]
            pages.append(PageResult(**{**page, "lines": lines}))
        return cls(**{**data, "pages": pages})
