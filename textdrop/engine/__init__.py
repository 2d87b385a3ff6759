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
from textdrop.engine.result import OcrResult
from textdrop.engine.sources import SourceLimits, crop_box, open_source

if TYPE_CHECKING:
    from PIL import Image

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
            (other engines never call it).

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
            pages = []
            selected = zip(numbers, document.pages(numbers), strict=True)
            for done, (number, image) in enumerate(selected, start=1):
                if options.box is not None:
                    image = crop_box(image, options.box, number)  # the region is the page from here on
                if backend.streams and on_text is not None:
                    page = backend.recognize_page(image, options, lambda text, n=number: on_text(n, text))
                else:
                    page = backend.recognize_page(image, options)
                page.number = number
                pages.append(page)
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
