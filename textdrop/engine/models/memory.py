"""Returning freed memory to the operating system between large allocations."""

from __future__ import annotations

import ctypes
import ctypes.util
import sys
from collections.abc import Callable

M_ARENA_MAX = -8
"""glibc's ``mallopt`` parameter for the number of malloc arenas (``malloc.h``)."""


def _malloc_trim() -> Callable[[int], int] | None:
    if not sys.platform.startswith("linux"):
        return None
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name) if name else None
        if libc is None:
            return None
        # onnxruntime's worker threads would each get an arena of their own, which fragments and which a
        # trim cannot fully return; one arena for the whole process costs no measurable time.
        libc.mallopt(M_ARENA_MAX, 1)
        return libc.malloc_trim
    except (OSError, AttributeError):  # musl has neither
        return None


_TRIM = _malloc_trim()


def release_memory() -> None:
    """Hand freed heap memory back to the OS between pages (glibc only; a no-op elsewhere).

    onnxruntime frees a page's activations with ``free()``, and glibc keeps them in its heap, so without
    this the resident set grows page after page (measured on shared/eval/dev: peak RSS 970 MB without,
    750-765 MB with it and a single arena, at no measurable cost in time; docs/adr/002).
    """
    if _TRIM is not None:
        _TRIM(0)
