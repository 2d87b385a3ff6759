"""Returning freed memory to the operating system between large allocations."""

from __future__ import annotations

import ctypes
import ctypes.util
import sys
from collections.abc import Callable


def _malloc_trim() -> Callable[[int], int] | None:
    if not sys.platform.startswith("linux"):
        return None
    name = ctypes.util.find_library("c")
    try:
        return ctypes.CDLL(name).malloc_trim if name else None
    except (OSError, AttributeError):  # musl has no malloc_trim
        return None


_TRIM = _malloc_trim()


def release_memory() -> None:
    """Hand freed heap memory back to the OS between pages (glibc only; a no-op elsewhere).

    onnxruntime frees a page's activations with ``free()``, and glibc keeps them in its heap, so without
    this the resident set grows page after page (measured on shared/eval/dev: peak RSS 970 MB without,
    740 MB with, at no measurable cost in time).
    """
    if _TRIM is not None:
        _TRIM(0)
