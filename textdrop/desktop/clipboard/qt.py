"""The clipboard of the running Qt application (``QGuiApplication.clipboard()``), and reading images off it.

Qt serves the clipboard from inside this process. On X11 and Wayland the text therefore lasts only as long
as the process (unless a clipboard manager takes it over at exit), which is fine for the tray app, which
keeps running, and wrong for the command line; :mod:`textdrop.desktop.clipboard` orders the handlers
accordingly. PySide6 is imported only inside the functions here, and only once a Qt application exists.
"""

from __future__ import annotations

import importlib.util
import logging
import sys
import threading
from typing import TYPE_CHECKING, ClassVar

from textdrop.desktop.clipboard.base import ClipboardError, Handler
from textdrop.desktop.clipboard.content import MARKDOWN_MIME, ClipboardContent

if TYPE_CHECKING:
    from PySide6.QtGui import QImage

log = logging.getLogger(__name__)


def _gui_application_running() -> bool:
    """True when a QGuiApplication exists; never the first to import Qt (no app can exist without it)."""
    if "PySide6.QtGui" not in sys.modules:
        return False
    from PySide6.QtGui import QGuiApplication

    return isinstance(QGuiApplication.instance(), QGuiApplication)


class QtHandler(Handler):
    """``QClipboard.setText`` in the running QGuiApplication (the tray app).

    Compatible only when a QGuiApplication exists, on the thread that runs it (QClipboard is not
    thread-safe), and not on Qt's native Wayland platform, where a program without a focused window may
    not set the clipboard (the wl-copy handler covers Wayland; Qt on XWayland is fine).
    """

    name: ClassVar[str] = "qt"
    install_hint: ClassVar[str] = "run the textdrop tray app (pip install 'textdrop[desktop]')"
    survives_exit: ClassVar[bool] = sys.platform in ("win32", "darwin")

    def is_compatible(self) -> bool:
        if not _gui_application_running():
            return False
        from PySide6.QtGui import QGuiApplication

        if QGuiApplication.platformName().startswith("wayland"):
            return False
        return threading.current_thread() is threading.main_thread()

    def is_installed(self) -> bool:
        return "PySide6" in sys.modules or importlib.util.find_spec("PySide6") is not None

    def copy(self, text: str) -> None:
        self.copy_content(ClipboardContent(text))

    def copy_content(self, content: ClipboardContent) -> None:
        """One QMimeData item: ``text/plain``, and ``text/markdown`` and ``text/html`` when given (X11
        offers each as a selection target; Windows and macOS as clipboard formats)."""
        from PySide6.QtCore import QByteArray, QMimeData
        from PySide6.QtGui import QClipboard, QGuiApplication

        mime = QMimeData()
        mime.setText(content.text)
        if content.markdown is not None:
            mime.setData(MARKDOWN_MIME, QByteArray(content.markdown.encode("utf-8")))
        if content.html is not None:
            mime.setHtml(content.html)
        clipboard = QGuiApplication.clipboard()
        clipboard.setMimeData(mime, QClipboard.Mode.Clipboard)  # the clipboard owns it from here
        if clipboard.text(QClipboard.Mode.Clipboard) != content.text:
            raise ClipboardError("Qt's clipboard did not keep the text")


def read_image() -> QImage | None:
    """The image on the clipboard, or ``None`` when it holds none (text, files, nothing).

    Raises:
        RuntimeError: no QGuiApplication runs in this process (the clipboard is read through Qt).
    """
    if not _gui_application_running():
        raise RuntimeError("reading an image from the clipboard needs a running QGuiApplication")
    from PySide6.QtGui import QGuiApplication

    clipboard = QGuiApplication.clipboard()
    mime = clipboard.mimeData()
    if mime is None or not mime.hasImage():
        return None
    image = clipboard.image()
    if image.isNull():
        log.debug("The clipboard offers an image (%s) that Qt cannot read", ", ".join(mime.formats()))
        return None
    return image
