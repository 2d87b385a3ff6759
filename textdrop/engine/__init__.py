"""Everything between a file and an :class:`OcrResult`; knows nothing of Qt or folders.

The one call the CLI, the folder watcher and the desktop app use is :func:`recognize`.
"""

from __future__ import annotations

import concurrent.futures
import contextvars
import logging
import os
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING

from textdrop.engine.documents.sources import SourceLimits, crop_box, open_source
from textdrop.engine.models.memory import release_memory
from textdrop.engine.registry import ABORT_SCOPE, Engine, RecognizeOptions, create_engine
from textdrop.engine.result import OcrResult, PageResult

if TYPE_CHECKING:
    from PIL import Image

    from textdrop.engine.documents.sources import Document

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
            pages are read from their text layer instead of being OCRed
            (:mod:`textdrop.engine.documents.textlayer`).
        limits: file size, pixel and page limits (defaults: :class:`SourceLimits`).
        on_page: called as ``on_page(done, total)`` after each page (``total``: the pages read, after
            ``options.pages``).
        on_text: streaming engines call it as ``on_text(page_number, text_so_far)`` while they generate
            (other engines never call it). With an engine that reads several pages at once
            (:attr:`Engine.concurrency`), it is called from the page threads, and ``on_page(done, total)``
            counts pages as they finish.

    Returns:
        The result, pages in document order. When every page came from a PDF text layer, its engine is
        :data:`LAYER_ENGINE` (no engine produced the text).

    Raises:
        TextdropError: a subclass naming what is wrong with the input (unreadable, too large, encrypted;
            ``options.pages`` past its end, ``options.box`` outside a page) or with the engine (unknown,
            not installed, failed to load).
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
            numbers = document.select(options.pages)
            # a PDF page with a usable text layer is read from it (a box always means OCR of the region)
            layered = {}
            if options.box is None:
                for number in numbers:
                    page = _from_layer(document, number, options.pdf_text)
                    if page is not None:
                        layered[number] = page
            to_ocr = [number for number in numbers if number not in layered]
            progress = None
            if on_page is not None:
                progress = lambda done, _total: on_page(done + len(layered), len(numbers))  # noqa: E731
                if not to_ocr:
                    progress(0, 0)
            selected = _selected(document, to_ocr, options)
            if backend.concurrency > 1:
                read = _side_by_side(selected, len(to_ocr), backend, options, progress, on_text)
            else:
                read = []
                for done, (number, image) in enumerate(selected, start=1):
                    read.append(_read_page(backend, image, number, options, on_text))
                    del image
                    release_memory()
                    if progress:
                        progress(done, len(to_ocr))
            for page in read:
                page.text_source = "ocr" if document.is_pdf else None
            pages = sorted([*layered.values(), *read], key=lambda page: page.number)
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


def _read_page(
    backend: Engine,
    image: Image.Image,
    number: int,
    options: RecognizeOptions,
    on_text: Callable[[int, str], None] | None,
) -> PageResult:
    """One page, numbered ``number``; ``on_text`` gets the page's number with its streamed text."""
    if backend.streams and on_text is not None:
        page = backend.recognize_page(image, options, lambda text: on_text(number, text))
    else:
        page = backend.recognize_page(image, options)
    page.number = number
    if page.engine is None:
        page.engine = backend.name
    return page


def _selected(
    document: Document, numbers: list[int], options: RecognizeOptions
) -> Iterator[tuple[int, Image.Image]]:
    """``(number, image)`` of the selected pages in order, each cropped to ``options.box`` when set."""
    for number, image in zip(numbers, document.pages(numbers), strict=True):
        yield number, image if options.box is None else crop_box(image, options.box, number)


def _side_by_side(
    selected: Iterable[tuple[int, Image.Image]],
    total: int,
    backend: Engine,
    options: RecognizeOptions,
    on_page: Callable[[int, int], None] | None,
    on_text: Callable[[int, str], None] | None,
) -> list[PageResult]:
    """The ``total`` selected pages read ``backend.concurrency`` at a time, returned in document order.

    Pages are rendered one at a time as slots free up (at most ``concurrency`` images in memory). When a
    page fails or ``on_page`` raises (a cancelled job), the pages still in flight are stopped through an
    :data:`ABORT_SCOPE` event of this call and the error propagates.
    """
    stop = threading.Event()
    scope = (*ABORT_SCOPE.get(), stop)
    pages: dict[int, PageResult] = {}
    in_flight: set[concurrent.futures.Future[PageResult]] = set()

    def collect() -> None:
        """Wait for at least one page in flight; keep the pages that finished."""
        done, _ = concurrent.futures.wait(in_flight, return_when=concurrent.futures.FIRST_COMPLETED)
        for future in done:
            in_flight.discard(future)
            page = future.result()
            pages[page.number] = page
            release_memory()
            if on_page:
                on_page(len(pages), total)

    def run(image: Image.Image, number: int) -> PageResult:
        ABORT_SCOPE.set(scope)
        return _read_page(backend, image, number, options, on_text)

    name = f"textdrop-{backend.name}-page"
    with concurrent.futures.ThreadPoolExecutor(backend.concurrency, thread_name_prefix=name) as pool:
        try:
            for number, image in selected:
                while len(in_flight) >= backend.concurrency:
                    collect()
                in_flight.add(pool.submit(contextvars.copy_context().run, run, image, number))
                del image
            while in_flight:
                collect()
        except BaseException:
            stop.set()
            for future in in_flight:
                future.cancel()
            raise
    return [pages[number] for number in sorted(pages)]


def _from_layer(document: Document, number: int, pdf_text: str) -> PageResult | None:
    """Page ``number`` read from its PDF text layer, or ``None`` when it is to be OCRed: not a PDF,
    ``pdf_text`` is ``"ocr"``, or (``"auto"``) the layer cannot stand in for OCR (the reason is logged)."""
    from textdrop.engine.ocr.layout import compose

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
