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

from textdrop.engine.backends.base import ABORT_SCOPE, Engine, RecognizeOptions, create_engine
from textdrop.engine.memory import release_memory
from textdrop.engine.result import OcrResult
from textdrop.engine.sources import SourceLimits, crop_box, open_source

if TYPE_CHECKING:
    from PIL import Image

    from textdrop.engine.result import PageResult
    from textdrop.engine.sources import Document

log = logging.getLogger(__name__)

__all__ = ["OcrResult", "RecognizeOptions", "SourceLimits", "recognize"]


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
        options: recognition options (defaults: :class:`RecognizeOptions`).
        limits: file size, pixel and page limits (defaults: :class:`SourceLimits`).
        on_page: called as ``on_page(done, total)`` after each page (``total``: the pages read, after
            ``options.pages``).
        on_text: streaming engines call it as ``on_text(page_number, text_so_far)`` while they generate
            (other engines never call it). With an engine that reads several pages at once
            (:attr:`Engine.concurrency`), it is called from the page threads, and ``on_page(done, total)``
            counts pages as they finish.

    Returns:
        The result, pages in document order.

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
            selected = _selected(document, numbers, options)
            if backend.concurrency > 1:
                pages = _side_by_side(selected, len(numbers), backend, options, on_page, on_text)
            else:
                pages = []
                for done, (number, image) in enumerate(selected, start=1):
                    pages.append(_read_page(backend, image, number, options, on_text))
                    del image
                    release_memory()
                    if on_page:
                        on_page(done, len(numbers))
    finally:
        if owned:
            backend.close()
    return OcrResult(
        pages=pages,
        engine=backend.name,
        model=backend.model,
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
