"""Windows clipboard through the Win32 API (user32 and kernel32 via ctypes; nothing to install).

The text is handed to the system as ``CF_UNICODETEXT`` in global memory that the system then owns, so it
stays on the clipboard after textdrop exits. The module imports on any platform (it touches the Windows
DLLs only inside :meth:`WindowsHandler.copy`) but the handler is available only on Windows.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import sys
import time
from collections.abc import Iterator
from typing import Any, ClassVar

from textdrop.desktop.clipboard.base import ClipboardError, Handler

log = logging.getLogger(__name__)

CF_UNICODETEXT = 13
GMEM_MOVEABLE = 0x0002
HWND_MESSAGE = -3
OPEN_RETRY_SECONDS = 0.5
"""Another program may hold the clipboard open for a moment; keep trying this long."""


class WindowsHandler(Handler):
    """``OpenClipboard`` → ``EmptyClipboard`` → ``SetClipboardData(CF_UNICODETEXT)`` → ``CloseClipboard``."""

    name: ClassVar[str] = "windows"
    install_hint: ClassVar[str] = "the Windows clipboard API is part of Windows (user32.dll)"

    def is_compatible(self) -> bool:
        return sys.platform == "win32"

    def is_installed(self) -> bool:
        return hasattr(ctypes, "WinDLL")

    def copy(self, text: str) -> None:
        api = _Win32()
        data = text.encode("utf-16-le") + b"\x00\x00"
        with api.owner_window() as hwnd, api.open_clipboard(hwnd):
            if not api.user32.EmptyClipboard():
                raise ClipboardError(f"EmptyClipboard failed ({api.last_error()})")
            memory = api.kernel32.GlobalAlloc(GMEM_MOVEABLE, len(data))
            if not memory:
                raise ClipboardError(f"GlobalAlloc of {len(data)} bytes failed ({api.last_error()})")
            try:
                pointer = api.kernel32.GlobalLock(memory)
                if not pointer:
                    raise ClipboardError(f"GlobalLock failed ({api.last_error()})")
                try:
                    ctypes.memmove(pointer, data, len(data))
                finally:
                    api.kernel32.GlobalUnlock(memory)
                if not api.user32.SetClipboardData(CF_UNICODETEXT, memory):
                    raise ClipboardError(f"SetClipboardData failed ({api.last_error()})")
            except BaseException:
                api.kernel32.GlobalFree(memory)  # the system owns the memory only once it has taken it
                raise


class _Win32:
    """The few user32/kernel32 functions the handler needs, with their argument types declared.

    Own ``WinDLL`` instances, so the declarations do not leak into other users of ``ctypes.windll``.
    """

    def __init__(self) -> None:
        from ctypes import wintypes

        self.user32: Any = ctypes.WinDLL("user32", use_last_error=True)  # type: ignore[attr-defined]
        self.kernel32: Any = ctypes.WinDLL("kernel32", use_last_error=True)  # type: ignore[attr-defined]
        w = wintypes
        window_args = [w.DWORD, w.LPCWSTR, w.LPCWSTR, w.DWORD, w.INT, w.INT, w.INT, w.INT]
        signatures: list[tuple[Any, list[Any], Any]] = [
            (self.user32.CreateWindowExW, [*window_args, w.HWND, w.HMENU, w.HINSTANCE, w.LPVOID], w.HWND),
            (self.user32.DestroyWindow, [w.HWND], w.BOOL),
            (self.user32.OpenClipboard, [w.HWND], w.BOOL),
            (self.user32.CloseClipboard, [], w.BOOL),
            (self.user32.EmptyClipboard, [], w.BOOL),
            (self.user32.SetClipboardData, [w.UINT, w.HANDLE], w.HANDLE),
            (self.kernel32.GlobalAlloc, [w.UINT, ctypes.c_size_t], w.HGLOBAL),
            (self.kernel32.GlobalLock, [w.HGLOBAL], w.LPVOID),
            (self.kernel32.GlobalUnlock, [w.HGLOBAL], w.BOOL),
            (self.kernel32.GlobalFree, [w.HGLOBAL], w.HGLOBAL),
        ]
        for function, argtypes, restype in signatures:
            function.argtypes = argtypes
            function.restype = restype

    @staticmethod
    def last_error() -> str:
        code = ctypes.get_last_error()  # type: ignore[attr-defined]
        return f"error {code}: {ctypes.FormatError(code).strip()}"  # type: ignore[attr-defined]

    @contextlib.contextmanager
    def owner_window(self) -> Iterator[int]:
        """A hidden message-only window to own the clipboard.

        ``SetClipboardData`` fails when the clipboard was opened without an owner window.
        """
        hwnd = self.user32.CreateWindowExW(0, "STATIC", "textdrop", 0, 0, 0, 0, 0, HWND_MESSAGE, 0, 0, 0)
        if not hwnd:
            raise ClipboardError(f"CreateWindowExW failed ({self.last_error()})")
        try:
            yield hwnd
        finally:
            self.user32.DestroyWindow(hwnd)

    @contextlib.contextmanager
    def open_clipboard(self, hwnd: int) -> Iterator[None]:
        deadline = time.monotonic() + OPEN_RETRY_SECONDS
        while not self.user32.OpenClipboard(hwnd):
            if time.monotonic() > deadline:
                raise ClipboardError(f"the clipboard is held open by another program ({self.last_error()})")
            time.sleep(0.01)
        try:
            yield
        finally:
            self.user32.CloseClipboard()
