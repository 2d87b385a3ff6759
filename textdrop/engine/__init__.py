"""Everything between a file and an :class:`OcrResult`; knows nothing of Qt or folders.

The one call the CLI, the folder watcher and the desktop app use is :func:`recognize`.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from textdrop.engine.backends.base import Engine, RecognizeOptions, create_engine
from textdrop.engine.memory import release_memory
from textdrop.engine.result import OcrResult, PageResult
from textdrop.engine.sources import Document, SourceLimits, open_source

if TYPE_CHECKING:
    from PIL import Image

log = logging.getLogger(__name__)

__all__ = ["LAYER_ENGINE", "OcrResult", "RecognizeOptions", "SourceLimits", "recognize"]

LAYER_ENGINE = "pdf-text"
"""The engine a result names when every page was read from a PDF text layer."""


def recognize(
    source: str | os.PathLike[str] | bytes | Image.Image,
    *,
    engine: str | Engine | None = None,
    options: RecognizeOptions | None = None,
    limits: SourceLimits | None = None,
    on_page: Callable[[int, int], None] | None = None,
    on_text: Callable[[int, str], None] | None = None,
) -> OcrResult:
    """Recognise every page of an image or PDF.

    Args:
        source: a file path, the bytes of an image or PDF, or a PIL image.
        engine: an engine name (``None`` or ``"auto"``: the best available; created, loaded and closed
            for this call), or an :class:`Engine` the caller owns (loaded here if needed, not closed).
        options: recognition options (defaults: :class:`RecognizeOptions`); ``pdf_text`` decides which PDF
            pages are read from their text layer instead of being OCRed (:mod:`textdrop.engine.textlayer`).
        limits: file size, pixel and page limits (defaults: :class:`SourceLimits`).
        on_page: called as ``on_page(done, total)`` after each page.
        on_text: streaming engines call it as ``on_text(page_number, text_so_far)`` while they generate
            (other engines never call it).

    Returns:
        The result, pages in document order. When every page came from a PDF text layer, its engine is
        :data:`LAYER_ENGINE` (no engine produced the text).

    Raises:
        TextdropError: a subclass naming what is wrong with the input (unreadable, too large, encrypted)
            or with the engine (unknown, not installed, failed to load).
        GenerationAborted: the engine's :meth:`~Engine.abort` stopped a page (the job queue's cancel).
    """
    started = time.perf_counter()
    owned = not isinstance(engine, Engine)
    backend = create_engine(engine) if owned else engine
    options = options or RecognizeOptions()
    try:
        backend.reset_abort()
        backend.load()
        load_seconds = time.perf_counter() - started
        with open_source(source, limits, page_size=backend.page_size) as document:
            pages = []
            for number in range(1, document.page_count + 1):
                page = _from_layer(document, number, options.pdf_text)
                if page is None:
                    image = document.page(number - 1)
                    if backend.streams and on_text is not None:
                        page = backend.recognize_page(image, options, lambda text, n=number: on_text(n, text))
                    else:
                        page = backend.recognize_page(image, options)
                    del image
                    release_memory()
                    page.text_source = "ocr" if document.is_pdf else None
                page.number = number
                pages.append(page)
                if on_page:
                    on_page(number, document.page_count)
    finally:
        if owned:
            backend.close()
    from_layer = bool(pages) and all(page.text_source == "layer" for page in pages)
    return OcrResult(
        pages=pages,
        engine=LAYER_ENGINE if from_layer else backend.name,
        model=None if from_layer else backend.model,
        source=document.name,
        sha256=document.sha256,
        load_seconds=load_seconds,
        seconds=time.perf_counter() - started,
    )


def _from_layer(document: Document, number: int, pdf_text: str) -> PageResult | None:
    """Page ``number`` read from its PDF text layer, or ``None`` when it is to be OCRed: not a PDF,
    ``pdf_text`` is ``"ocr"``, or (``"auto"``) the layer cannot stand in for OCR (the reason is logged)."""
    from textdrop.engine.layout import compose

    if not document.is_pdf or pdf_text == "ocr":
        return None
    started = time.perf_counter()
    layer = document.text_layer(number - 1)
    assert layer is not None
    if layer.problem is not None and pdf_text == "auto":
        log.info("page %d is OCRed: %s", number, layer.problem)
        return None
    lines, markdown, text = compose(layer.lines, layer.width, layer.height)
    page = PageResult(
        number=number,
        width=layer.width,
        height=layer.height,
        markdown=markdown,
        text=text,
        lines=lines,
        text_source="layer",
    )
    if layer.problem is not None:
        only = f"page {number} was read from its text layer only (pdf_text = layer)"
        page.warnings.append(f"{only}: {layer.problem}")
    page.seconds = time.perf_counter() - started
    return page
