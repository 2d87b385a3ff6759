"""One recognised document on screen: the Markdown rendered and as raw text, side by side.

:class:`ResultView` shows a VLM's text while it is generated (:meth:`ResultView.set_streaming_text`), then
the final :class:`~textdrop.engine.result.OcrResult` (:meth:`ResultView.set_result`), with buttons to copy
the Markdown, open the sidecar and reveal it in its folder. The drop window embeds one; the tray app opens
one per result a user asks to see.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import Qt, QTimer, QUrl, Signal
from PySide6.QtGui import QDesktopServices, QFontDatabase, QGuiApplication
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QPlainTextEdit,
    QPushButton,
    QSplitter,
    QTextBrowser,
    QVBoxLayout,
    QWidget,
)

from textdrop.engine.result import PAGE_SEPARATOR

if TYPE_CHECKING:
    from textdrop.engine.result import OcrResult

log = logging.getLogger(__name__)

ERROR_COLOR = "#b3261e"
STREAM_REFRESH_MS = 80
"""Streamed text is re-rendered at most this often (a VLM reports every token; layout is not free)."""


def qt_copy(text: str) -> None:
    """Put ``text`` on the clipboard through Qt (the default copy function of :class:`ResultView`)."""
    QGuiApplication.clipboard().setText(text)


def open_path(path: Path) -> bool:
    """Open a file or folder with the desktop's default application; False when the desktop refused."""
    ok = QDesktopServices.openUrl(QUrl.fromLocalFile(str(path)))
    if not ok:
        log.warning("the desktop could not open %s", path)
    return ok


def status_text(result: OcrResult) -> str:
    """One line about how a result was made: source, engine, model, pages, seconds (and fallbacks)."""
    parts = []
    if result.source:
        parts.append(result.source)
    parts.append(f"engine {result.engine}")
    if result.model:
        parts.append(f"model {result.model}")
    pages = len(result.pages)
    parts.append(f"{pages} page{'' if pages == 1 else 's'}")
    parts.append(f"{result.seconds:.1f} s")
    parts.extend(result.fallback_notes())
    return " · ".join(parts)


class ResultView(QWidget):
    """A result: rendered Markdown (left) and raw text (right) in a splitter, a status line, and buttons.

    Args:
        parent: the parent widget (``None``: a window of its own).
        copy: puts text on the clipboard (the tray passes its clipboard handler chain, which outlives the
            app); ``None`` uses Qt's clipboard.

    Signals:
        copied(str): the Copy button put this text on the clipboard.
    """

    copied = Signal(str)

    def __init__(self, parent: QWidget | None = None, *, copy: Callable[[str], None] | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("textdrop result")
        self._copy = copy or qt_copy
        self._result: OcrResult | None = None
        self._sidecar: Path | None = None
        self._pages: dict[int, str] = {}
        self._refresh = QTimer(self)
        self._refresh.setSingleShot(True)
        self._refresh.setInterval(STREAM_REFRESH_MS)
        self._refresh.timeout.connect(self._show_stream)

        self.markdown_view = QTextBrowser()
        self.markdown_view.setOpenExternalLinks(True)
        self.markdown_view.setPlaceholderText("The rendered Markdown appears here.")
        self.text_view = QPlainTextEdit()
        self.text_view.setReadOnly(True)
        self.text_view.setFont(QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont))
        self.text_view.setLineWrapMode(QPlainTextEdit.LineWrapMode.WidgetWidth)
        self.text_view.setPlaceholderText("The Markdown source appears here.")
        self.markdown_view.document().setDocumentMargin(10)
        self.text_view.document().setDocumentMargin(8)
        self.splitter = QSplitter(Qt.Orientation.Horizontal)
        self.splitter.addWidget(self.markdown_view)
        self.splitter.addWidget(self.text_view)
        self.splitter.setChildrenCollapsible(False)
        self.splitter.setSizes([1, 1])

        self.status_label = QLabel("")
        self.status_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.status_label.setWordWrap(True)
        self.copy_button = QPushButton("Copy")
        self.copy_button.setToolTip("Copy the Markdown to the clipboard")
        self.copy_button.clicked.connect(self.copy)
        self.open_button = QPushButton("Open sidecar")
        self.open_button.clicked.connect(self.open_sidecar)
        self.reveal_button = QPushButton("Reveal in folder")
        self.reveal_button.clicked.connect(self.reveal_sidecar)

        buttons = QHBoxLayout()
        buttons.addWidget(self.status_label, 1)
        buttons.addWidget(self.copy_button)
        buttons.addWidget(self.open_button)
        buttons.addWidget(self.reveal_button)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 6, 6, 6)
        layout.addWidget(self.splitter, 1)
        layout.addLayout(buttons)
        self.resize(900, 560)
        self._update_buttons()

    # -- what is shown -------------------------------------------------------------------------------

    @property
    def result(self) -> OcrResult | None:
        """The result shown, or ``None`` while nothing or only streamed text is shown."""
        return self._result

    @property
    def sidecar(self) -> Path | None:
        """The sidecar of the result shown, or ``None``."""
        return self._sidecar

    def markdown(self) -> str:
        """The Markdown shown: the result's, or the text streamed so far."""
        if self._result is not None:
            return self._result.markdown
        return _join_pages(self._pages)

    def clear(self) -> None:
        """Show nothing."""
        self._refresh.stop()
        self._result = None
        self._sidecar = None
        self._pages = {}
        self.markdown_view.clear()
        self.text_view.clear()
        self.status_label.setText("")
        self.status_label.setStyleSheet("")
        self._update_buttons()

    def set_streaming_text(self, page: int, text: str) -> None:
        """Show ``text``, all of page ``page`` generated so far, while a VLM produces it.

        Pages streamed earlier stay shown above it. The view re-renders at most every
        :data:`STREAM_REFRESH_MS` ms, however often this is called.
        """
        if self._result is not None:  # a new document starts streaming
            self.clear()
        self._pages[page] = text
        self.status_label.setText(f"Reading page {page}…")
        if not self._refresh.isActive():
            self._refresh.start()

    def set_result(self, result: OcrResult, sidecar_path: Path | None = None) -> None:
        """Show the final ``result``; ``sidecar_path`` enables Open sidecar and Reveal in folder."""
        self._refresh.stop()
        self._result = result
        self._sidecar = sidecar_path
        self._pages = {}
        self.markdown_view.setMarkdown(result.markdown)
        self.text_view.setPlainText(result.markdown)
        status = status_text(result)
        if sidecar_path is not None:
            status += f" · sidecar {sidecar_path.name}"
            self.open_button.setToolTip(str(sidecar_path))
            self.reveal_button.setToolTip(str(sidecar_path.parent))
        self.status_label.setText(status)
        self.status_label.setStyleSheet("")
        self._update_buttons()

    # -- actions -------------------------------------------------------------------------------------

    def copy(self) -> str:
        """Copy the Markdown shown to the clipboard and emit :attr:`copied`; returns the text."""
        text = self.markdown()
        if not text:
            return ""
        try:
            self._copy(text)
        except Exception as exc:  # a clipboard handler failed: say so, keep the window usable
            log.exception("copying the result failed")
            self.status_label.setText(f"Could not copy to the clipboard: {exc}")
            return ""
        self.copied.emit(text)
        return text

    def open_sidecar(self) -> bool:
        """Open the sidecar in the default Markdown application; False without one, or when the desktop
        could not open it (the status line then says so and where the file is)."""
        if self._sidecar is None:
            return False
        if open_path(self._sidecar):
            return True
        self._report_unopened(
            f"No application opens {self._sidecar.suffix} files here; open {self._sidecar} in a text editor."
        )
        return False

    def reveal_sidecar(self) -> bool:
        """Open the sidecar's folder in the file manager; False without one, or when the desktop could not
        open it (the status line then says so)."""
        if self._sidecar is None:
            return False
        if open_path(self._sidecar.parent):
            return True
        self._report_unopened(f"No file manager answered; the sidecar is in {self._sidecar.parent}.")
        return False

    def _report_unopened(self, message: str) -> None:
        self.status_label.setText(message)
        self.status_label.setStyleSheet(f"color: {ERROR_COLOR};")

    # -- internals -----------------------------------------------------------------------------------

    def _show_stream(self) -> None:
        text = _join_pages(self._pages)
        self.markdown_view.setMarkdown(text)
        self.text_view.setPlainText(text)
        bar = self.text_view.verticalScrollBar()
        bar.setValue(bar.maximum())
        self._update_buttons()

    def _update_buttons(self) -> None:
        self.copy_button.setEnabled(bool(self._result is not None or any(self._pages.values())))
        has_sidecar = self._sidecar is not None
        self.open_button.setEnabled(has_sidecar)
        self.reveal_button.setEnabled(has_sidecar)


def _join_pages(pages: dict[int, str]) -> str:
    parts = []
    for number in sorted(pages):
        if number > 1:
            parts.append(PAGE_SEPARATOR.format(number=number))
        parts.append(pages[number])
    return "\n\n".join(parts)
