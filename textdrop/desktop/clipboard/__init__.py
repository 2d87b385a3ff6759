"""Put text on the system clipboard through a chain of platform handlers, so that it stays there.

Handlers (one module each: :mod:`.qt`, :mod:`.wlclipboard`, :mod:`.xclip`, :mod:`.pbcopy`,
:mod:`.windows`) are tried in the order of :data:`PREFERENCE`, skipping those that do not fit this session
or are not installed, until one takes the text. The order depends on who asks:

* the command line (``textdrop ocr --copy``, ``persistent=True``) exits right after copying, so the tools
  that keep serving the clipboard after we exit come first, and Qt (whose clipboard on X11 and Wayland
  dies with the process) comes last;
* the tray app (``persistent=False``) keeps running, so Qt's own clipboard comes first: no process to
  start, and it works wherever the app's window system does.

Importing this package does not import Qt; only the Qt handler does, and only once a Qt application
exists. (Pattern from NormCap's ``clipboard/main.py``.)
"""

from __future__ import annotations

import logging
import sys
from typing import TYPE_CHECKING

from textdrop.desktop.clipboard.base import (
    ClipboardError,
    Handler,
    has_wayland_session,
    has_x11_display,
    is_unix_desktop,
)
from textdrop.desktop.clipboard.content import ClipboardContent
from textdrop.desktop.clipboard.pbcopy import PbcopyHandler
from textdrop.desktop.clipboard.qt import QtHandler
from textdrop.desktop.clipboard.windows import WindowsHandler
from textdrop.desktop.clipboard.wlclipboard import WlCopyHandler
from textdrop.desktop.clipboard.xclip import XclipHandler, XselHandler

if TYPE_CHECKING:
    from PySide6.QtGui import QImage

__all__ = [
    "PREFERENCE",
    "ClipboardContent",
    "ClipboardError",
    "Handler",
    "copy_text",
    "handlers",
    "read_image",
]

log = logging.getLogger(__name__)

HANDLERS: dict[str, type[Handler]] = {
    cls.name: cls
    for cls in (WindowsHandler, PbcopyHandler, WlCopyHandler, XclipHandler, XselHandler, QtHandler)
}
"""Every handler by name."""

PREFERENCE: dict[bool, tuple[str, ...]] = {
    # persistent: the text must outlive this process (the command line)
    True: ("windows", "pbcopy", "wl-copy", "xclip", "xsel", "qt"),
    # not persistent: this process keeps running (the tray app), so its own Qt clipboard is best
    False: ("qt", "windows", "pbcopy", "wl-copy", "xclip", "xsel"),
}
"""The one place that orders the handlers. On each platform only a few are compatible: Windows:
windows, qt; macOS: pbcopy, qt; Wayland: wl-copy, then xclip/xsel through XWayland, qt; X11: xclip, xsel,
qt."""


def handlers(*, persistent: bool = True) -> list[Handler]:
    """The whole chain in order of preference, including handlers that do not fit here.

    :func:`copy_text` skips those that are not compatible or not installed; ``textdrop doctor`` can show
    each one's state.
    """
    return [HANDLERS[name]() for name in PREFERENCE[persistent]]


def copy_text(text: str | ClipboardContent, *, persistent: bool = True) -> str:
    """Put ``text`` on the clipboard with the first handler that works; returns that handler's name.

    Args:
        text: the text to copy, or a :class:`ClipboardContent` whose formats go on one clipboard item
            (where the handler can offer several; the others put its plain text).
        persistent: True when the text must stay on the clipboard after this process exits (the command
            line); False in the long-lived tray app, which then prefers Qt's clipboard.

    Raises:
        ClipboardError: no handler took the text; the message lists each one tried, why it failed, and
            how to install the missing ones.
    """
    content = text if isinstance(text, ClipboardContent) else ClipboardContent(text)
    problems: list[str] = []
    for handler in handlers(persistent=persistent):
        if not handler.is_compatible():
            log.debug("Clipboard handler %s does not fit this session", handler.name)
            continue
        if not handler.is_installed():
            log.debug("Clipboard handler %s is not installed", handler.name)
            problems.append(f"{handler.name} not installed ({handler.install_hint})")
            continue
        try:
            handler.copy_content(content)
        except Exception as exc:  # any failure of one handler moves on to the next
            log.warning("Clipboard handler %s failed: %s", handler.name, exc)
            problems.append(f"{handler.name} failed ({exc})")
            continue
        if persistent and not handler.survives_exit:
            log.warning(
                "Copied with %s, whose clipboard empties when this process exits unless a clipboard "
                "manager takes it over; install one of: %s",
                handler.name,
                "; ".join(h.install_hint for h in handlers() if h.survives_exit and h.is_compatible()),
            )
        log.info("Copied %d characters to the clipboard with %s", len(content.text), handler.name)
        return handler.name
    if not problems:
        raise ClipboardError(f"No clipboard is reachable: {_no_session_reason()}")
    raise ClipboardError(f"No clipboard tool worked: {', '.join(problems)}.")


def read_image() -> QImage | None:
    """The image on the clipboard as a QImage, or ``None`` when there is none (for "OCR clipboard image").

    Raises:
        RuntimeError: no QGuiApplication runs in this process.
    """
    from textdrop.desktop.clipboard.qt import read_image as qt_read_image

    return qt_read_image()


def _no_session_reason() -> str:
    if is_unix_desktop() and not has_x11_display() and not has_wayland_session():
        return (
            "neither DISPLAY (X11) nor WAYLAND_DISPLAY (Wayland) is set; run textdrop inside the desktop "
            "session, or export DISPLAY or WAYLAND_DISPLAY."
        )
    return f"no clipboard handler supports this platform ({sys.platform})."
