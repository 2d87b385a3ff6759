"""The drop window: files, image data, image links and pasted images in, Markdown out.

Every thing dropped or pasted becomes a row with its status (queued, reading page i of n, done, failed with
the message) and a Cancel button, and an INTERACTIVE job on the one job queue (through
:class:`~textdrop.desktop.bridge.JobBridge`). A finished file gets its sidecar next to it; every result is
shown in the embedded :class:`~textdrop.desktop.result_view.ResultView` and handed to ``on_result`` (the
tray copies it to the clipboard and notifies).

Nothing slow runs on the GUI thread (STYLE.md, pattern 7): recognition runs in the job worker, and the
rest (downloading a dragged link, encoding image data as PNG, writing a sidecar) in this window's thread
pool, which reports back through a signal.
"""

from __future__ import annotations

import itertools
import logging
import threading
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import httpx
from PySide6.QtCore import (
    QMimeData,
    QObject,
    Qt,
    QThreadPool,
    QTimer,
    QUrl,
    Signal,
)
from PySide6.QtGui import (
    QCursor,
    QDragEnterEvent,
    QDragLeaveEvent,
    QDragMoveEvent,
    QDropEvent,
    QGuiApplication,
    QImage,
    QKeyEvent,
    QKeySequence,
    QPixmap,
    QScreen,
)
from PySide6.QtWidgets import (
    QFileDialog,
    QFrame,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QProgressBar,
    QPushButton,
    QScrollArea,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from textdrop import __version__
from textdrop.desktop.bridge import JobBridge, png_bytes
from textdrop.desktop.history import Entry, History
from textdrop.desktop.result_view import ResultView
from textdrop.engine.documents.sidecar import DEFAULT_TEMPLATE, write_sidecar
from textdrop.engine.documents.sources import SUPPORTED_SUFFIXES
from textdrop.engine.errors import TextdropError
from textdrop.engine.jobs import Priority
from textdrop.engine.result import OcrResult

log = logging.getLogger(__name__)

HINT = "Drop images or PDFs here, or paste an image"
MAX_DOWNLOAD_BYTES = 50 * 1024 * 1024
"""A dragged link is read only when the server sends at most this many bytes (50 MiB)."""
DOWNLOAD_TIMEOUT = 30.0
"""Seconds a download may wait for the server to connect or to send the next bytes."""
ERROR_COLOR = "#b3261e"
OK_COLOR = "#2e6b30"
FRAME_ALLOWANCE = (16, 48)
"""Pixels (width, height) kept free beside the window for the window manager's frame and title bar."""

OnResult = Callable[[OcrResult, Path | None, Path | None], None]


class DownloadRefused(TextdropError):
    """A dragged link could not be read: the server failed, it is not an image or a PDF, or it is too big."""


class _Aborted(Exception):
    """The row was cancelled while its download or encoding ran."""


def download(
    url: str,
    *,
    abort: threading.Event | None = None,
    limit: int = MAX_DOWNLOAD_BYTES,
    timeout: float = DOWNLOAD_TIMEOUT,
) -> bytes:
    """The bytes of the image or PDF at an http(s) ``url`` (run it in a worker thread: it blocks).

    Args:
        url: the link that was dropped.
        abort: when set, the download stops at its next chunk.
        limit: the most bytes accepted.
        timeout: seconds to wait for a connection or for more bytes.

    Raises:
        DownloadRefused: the server could not be reached or answered an error, its content type is not
            ``image/*`` (SVG excluded) or ``application/pdf``, or it sends more than ``limit`` bytes.
    """
    headers = {"User-Agent": f"textdrop/{__version__}", "Accept": "image/*,application/pdf;q=0.9"}
    too_big = DownloadRefused(
        f"{_short(url)} is larger than {limit // (1024 * 1024)} MB: save it and drop the file instead."
    )
    try:
        with (
            httpx.Client(follow_redirects=True, timeout=timeout, headers=headers) as client,
            client.stream("GET", url) as response,
        ):
            if response.status_code >= 400:
                raise DownloadRefused(
                    f"The server answered {response.status_code} {response.reason_phrase} for {_short(url)}."
                )
            kind = response.headers.get("content-type", "").split(";")[0].strip().lower()
            if not (kind.startswith("image/") and kind != "image/svg+xml") and kind != "application/pdf":
                raise DownloadRefused(
                    f"{_short(url)} is {kind or 'of unknown type'}, not an image or a PDF: drag the image "
                    "itself, or save it and drop the file."
                )
            length = response.headers.get("content-length", "")
            if length.isdigit() and int(length) > limit:
                raise too_big
            chunks: list[bytes] = []
            size = 0
            for chunk in response.iter_bytes():
                if abort is not None and abort.is_set():
                    raise _Aborted
                size += len(chunk)
                if size > limit:
                    raise too_big
                chunks.append(chunk)
    except httpx.HTTPError as exc:
        raise DownloadRefused(f"Could not download {_short(url)}: {exc or type(exc).__name__}.") from exc
    log.info("downloaded %d bytes (%s) from %s", size, kind, url)
    return b"".join(chunks)


def _short(url: str, width: int = 80) -> str:
    return url if len(url) <= width else url[: width - 1] + "…"


def _elide_middle(text: str, width: int = 70) -> str:
    if len(text) <= width:
        return text
    half = (width - 1) // 2
    return f"{text[:half]}…{text[-half:]}"


def _web_url(text: str) -> QUrl | None:
    """A single http(s) link in plain text (some apps drag links as text only), else None."""
    text = text.strip()
    if not text or any(ch.isspace() for ch in text):
        return None
    url = QUrl(text)
    return url if url.isValid() and url.scheme().lower() in ("http", "https") else None


class JobRow(QFrame):
    """One dropped or pasted thing: its name, status, progress bar, and Show / Cancel buttons.

    States: ``preparing`` (downloading or encoding), ``queued``, ``reading``, ``writing`` (the sidecar),
    ``done``, ``failed``, ``cancelling``, ``cancelled``.

    Attributes:
        label: what the row is about (a file name, "Pasted image 800×600", a link).
        path: the dropped file, or ``None`` for image data and links (they get no sidecar).
        job_id: the bridge's job id once the job is submitted.
        result: the result once done.
        sidecar: the sidecar written, or ``None``.
        error: the failure message (a failed job, or a sidecar that could not be written).
    """

    TERMINAL = frozenset({"done", "failed", "cancelled"})

    def __init__(self, label: str, path: Path | None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("jobRow")
        self.label = label
        self.path = path
        self.job_id: int | None = None
        self.result: OcrResult | None = None
        self.sidecar: Path | None = None
        self.error: str | None = None
        self.state = "preparing"
        self.abort = threading.Event()

        self.name_label = QLabel(_elide_middle(label))
        self.name_label.setToolTip(str(path) if path else label)
        font = self.name_label.font()
        font.setBold(True)
        self.name_label.setFont(font)
        self.status_label = QLabel("")
        self.status_label.setWordWrap(True)
        self.status_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.progress = QProgressBar()
        self.progress.setTextVisible(False)
        self.progress.setFixedHeight(6)
        self.show_button = QPushButton("Show")
        self.show_button.setToolTip("Show this result below")
        self.show_button.hide()
        self.cancel_button = QPushButton("Cancel")

        grid = QGridLayout(self)
        grid.setContentsMargins(10, 6, 10, 6)
        grid.setVerticalSpacing(3)
        grid.addWidget(self.name_label, 0, 0)
        grid.addWidget(self.status_label, 1, 0)
        grid.addWidget(self.progress, 2, 0)
        buttons = QHBoxLayout()
        buttons.addWidget(self.show_button)
        buttons.addWidget(self.cancel_button)
        grid.addLayout(buttons, 0, 1, 3, 1, Qt.AlignmentFlag.AlignVCenter)
        grid.setColumnStretch(0, 1)
        self.setStyleSheet("#jobRow { border: none; border-bottom: 1px solid rgba(0, 0, 0, 40); }")

    @property
    def finished(self) -> bool:
        """True once the row is done, failed or cancelled."""
        return self.state in self.TERMINAL

    @property
    def status(self) -> str:
        """The status line shown."""
        return self.status_label.text()

    def set_state(
        self, state: str, status: str, *, value: int | None = None, total: int | None = None
    ) -> None:
        """Show ``state`` with the ``status`` line; ``value`` of ``total`` sets the bar (none: busy). A
        finished row hides its bar and Cancel button, and offers Show when it has a result."""
        self.state = state
        self.status_label.setText(status)
        color = ERROR_COLOR if state == "failed" or (state == "done" and self.error) else None
        color = color or (OK_COLOR if state == "done" else None)
        self.status_label.setStyleSheet(f"color: {color};" if color else "")
        if state in self.TERMINAL:
            self.progress.hide()
            self.cancel_button.hide()
            self.show_button.setVisible(self.result is not None)
            return
        if state == "queued":  # waiting: an empty, still bar and a grey line, unlike a row being read
            self.progress.setRange(0, 1)
            self.progress.setValue(0)
            self.status_label.setStyleSheet("color: palette(placeholder-text);")
        elif total:
            self.progress.setRange(0, total)
            self.progress.setValue(value or 0)
        else:
            self.progress.setRange(0, 0)  # busy
        self.progress.show()
        if state == "cancelling":
            self.cancel_button.setEnabled(False)


class _Relay(QObject):
    """Carries the outcome of a pool task back to the GUI thread (signals queue across threads)."""

    done = Signal(object, object)  # the callback, the value
    failed = Signal(object, str)  # the callback, the message


class DropWindow(QWidget):
    """The drop window: a list of rows, one per dropped or pasted thing, and a result view.

    Args:
        bridge: submits the jobs and reports on them (the tray app's, shared with captures).
        write_sidecars: write a sidecar next to each dropped file.
        template: the sidecar name template (``None``: the default, ``{name}.{ext}``).
        on_result: called on the GUI thread as ``on_result(result, source_path, sidecar_path)`` for each
            result (``source_path`` is ``None`` for image data and links, ``sidecar_path`` when no sidecar
            was written); the tray copies and notifies there (:attr:`pending` tells whether more follow).
        history: the tray's recent results, searched with the search field (``None``: no search field).
    """

    def __init__(
        self,
        bridge: JobBridge,
        *,
        write_sidecars: bool = True,
        template: str | None = None,
        on_result: OnResult | None = None,
        history: History | None = None,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.bridge = bridge
        self.history = history
        self.write_sidecars = write_sidecars
        self.template = template or DEFAULT_TEMPLATE
        self.on_result = on_result
        self.rows: list[JobRow] = []
        self._by_job: dict[int, JobRow] = {}
        self._shown: JobRow | None = None
        self._pool = QThreadPool(self)
        self._pool.setMaxThreadCount(4)
        self._relay = _Relay(self)
        self._relay.done.connect(self._relay_done)
        self._relay.failed.connect(self._relay_failed)
        self._submitting: JobRow | None = None
        self._images = itertools.count(1)

        self.setWindowTitle("textdrop")
        self.setAcceptDrops(True)
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self._build()
        self.resize(920, 680)
        self.fit_screen()

        bridge.started.connect(self._started)
        bridge.progress.connect(self._progress)
        bridge.text.connect(self._text)
        bridge.finished.connect(self._finished)
        bridge.failed.connect(self._failed)
        bridge.cancelled.connect(self._cancelled)

    def _build(self) -> None:
        self.open_button = QPushButton("Open files…")
        self.open_button.clicked.connect(self.open_files)
        self.paste_button = QPushButton("Paste")
        paste_keys = QKeySequence(QKeySequence.StandardKey.Paste).toString(
            QKeySequence.SequenceFormat.NativeText
        )
        self.paste_button.setToolTip(f"Read the image on the clipboard ({paste_keys})")
        self.paste_button.clicked.connect(self.paste)
        self.clear_button = QPushButton("Clear finished")
        self.clear_button.clicked.connect(self.clear_finished)
        self.clear_button.setEnabled(False)
        self.search_edit = QLineEdit()
        self.search_edit.setPlaceholderText("Search recent results…")
        self.search_edit.setClearButtonEnabled(True)
        self.search_edit.textChanged.connect(self.search)
        self.search_edit.setVisible(self.history is not None)
        self.history_list = QListWidget()
        self.history_list.itemClicked.connect(self._show_entry)
        self.history_list.itemActivated.connect(self._show_entry)
        self.history_list.hide()
        toolbar = QHBoxLayout()
        toolbar.addWidget(self.open_button)
        toolbar.addWidget(self.paste_button)
        toolbar.addStretch(1)
        toolbar.addWidget(self.search_edit, 2)
        toolbar.addWidget(self.clear_button)

        self.message_label = QLabel("")
        self.message_label.setWordWrap(True)
        self.message_label.hide()

        self.hint_label = QLabel(HINT)
        self.hint_label.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.hint_label.setWordWrap(True)
        font = self.hint_label.font()
        font.setPointSizeF(font.pointSizeF() * 1.4)
        self.hint_label.setFont(font)
        self.hint_label.setStyleSheet("color: palette(placeholder-text);")

        self._rows_widget = QWidget()
        self._rows_layout = QVBoxLayout(self._rows_widget)
        self._rows_layout.setContentsMargins(0, 0, 0, 0)
        self._rows_layout.setSpacing(0)
        self._rows_layout.addStretch(1)
        self.scroll = QScrollArea()
        self.scroll.setWidgetResizable(True)
        self.scroll.setFrameShape(QFrame.Shape.NoFrame)
        self.scroll.setWidget(self._rows_widget)
        self.scroll.hide()

        self.drop_area = QFrame()
        self.drop_area.setObjectName("dropArea")
        self.drop_area.setMinimumHeight(140)
        area = QVBoxLayout(self.drop_area)
        area.setContentsMargins(4, 4, 4, 4)
        area.addWidget(self.hint_label, 1)
        area.addWidget(self.scroll, 1)
        area.addWidget(self.history_list, 1)
        self._highlight(False)

        self.result_view = ResultView(self)
        self.result_view.layout().setContentsMargins(0, 6, 0, 0)  # line up with the drop area
        self.result_view.hide()
        self.splitter = QSplitter(Qt.Orientation.Vertical)
        self.splitter.addWidget(self.drop_area)
        self.splitter.addWidget(self.result_view)
        self.splitter.setChildrenCollapsible(False)
        self.splitter.setStretchFactor(0, 2)
        self.splitter.setStretchFactor(1, 3)

        layout = QVBoxLayout(self)
        layout.addLayout(toolbar)
        layout.addWidget(self.message_label)
        layout.addWidget(self.splitter, 1)

    # -- public --------------------------------------------------------------------------------------

    def search(self, query: str) -> list[Entry]:
        """List the recent results matching ``query`` (every word; text, name or engine) in place of the
        rows; an empty query shows the rows again. Returns the entries listed."""
        if self.history is None or not query.strip():
            self.history_list.hide()
            self._update_empty()
            return []
        self.history_list.show()
        entries = self.history.search(query)
        self.history_list.clear()
        for entry in entries:
            first = next((line for line in entry.text.splitlines() if line.strip()), "")
            item = QListWidgetItem(
                f"{entry.local_time('%Y-%m-%d %H:%M')}  {entry.what} · {entry.engine}\n{first}"
            )
            item.setData(Qt.ItemDataRole.UserRole, entry)
            self.history_list.addItem(item)
        if not entries:
            self.history_list.addItem(QListWidgetItem(f"No recent result contains “{query.strip()}”."))
        self.hint_label.hide()
        self.scroll.hide()
        return entries

    def _show_entry(self, item: QListWidgetItem) -> None:
        entry = item.data(Qt.ItemDataRole.UserRole)
        if entry is None:
            return
        self._shown = None
        self.result_view.set_result(entry.result(), Path(entry.sidecar) if entry.sidecar else None)
        self._show_result_view()

    @property
    def pending(self) -> int:
        """How many rows are not finished yet (preparing, queued, reading, writing)."""
        return sum(not row.finished for row in self.rows)

    def fit_screen(self, screen: QScreen | None = None) -> None:
        """Shrink the window (never below its minimum size) so that it and its frame fit the available area
        of ``screen`` (default: the one under the mouse), e.g. 1366×768 with a panel."""
        screen = screen or QGuiApplication.screenAt(QCursor.pos()) or QGuiApplication.primaryScreen()
        if screen is None:
            return
        area = screen.availableGeometry()
        width = min(self.width(), area.width() - FRAME_ALLOWANCE[0])
        height = min(self.height(), area.height() - FRAME_ALLOWANCE[1])
        self.resize(max(width, self.minimumSizeHint().width()), max(height, self.minimumSizeHint().height()))

    def present(self) -> None:
        """Show the window in front, restored if it was minimized (a second launch, a tray icon click)."""
        if self.isMinimized():
            self.setWindowState(self.windowState() & ~Qt.WindowState.WindowMinimized)
            self.showNormal()
        self.show()
        self.raise_()
        self.activateWindow()

    @property
    def message(self) -> str:
        """The message line (what was ignored or refused in the last drop or paste); empty when none."""
        return "" if self.message_label.isHidden() else self.message_label.text()

    def show_message(self, text: str, *, error: bool = False) -> None:
        """Show ``text`` on the message line (``""`` hides it)."""
        self.message_label.setText(text)
        self.message_label.setStyleSheet(f"color: {ERROR_COLOR};" if error else "")
        self.message_label.setVisible(bool(text))
        if text:
            log.info("drop window: %s", text)

    def handle_mime(self, mime: QMimeData, *, pasted: bool = False) -> list[JobRow]:
        """Turn dropped or pasted data into rows and jobs; returns the new rows.

        Local files become file jobs (folders are ignored with a message). Without files, image data is
        encoded and submitted. http(s) links are downloaded (images and PDFs only), unless image data
        came with them: a browser drags an image as its data and its link, and the data is enough.
        """
        self.show_message("")
        notes: list[str] = []
        rows: list[JobRow] = []
        urls = list(mime.urls()) if mime.hasUrls() else []
        if not urls and mime.hasText() and (link := _web_url(mime.text())) is not None:
            urls = [link]
        files = [Path(url.toLocalFile()) for url in urls if url.isLocalFile()]
        web = [url for url in urls if url.scheme().lower() in ("http", "https")]
        others = [url for url in urls if not url.isLocalFile() and url not in web]
        folders = [path for path in files if path.is_dir()]
        if folders:
            names = ", ".join(path.name or str(path) for path in folders)
            notes.append(
                f"Folders are not read here ({names}): drop the files, or add the folder as a watched "
                "folder in Settings."
            )
        rows += self.submit_files(path for path in files if not path.is_dir())
        image_rows = []
        if not files and mime.hasImage():
            image = mime.imageData()
            if isinstance(image, QPixmap):
                image = image.toImage()
            if isinstance(image, QImage) and not image.isNull():
                image_rows.append(self.submit_image(image, pasted=pasted))
        rows += image_rows
        if not image_rows:
            rows += [self.submit_url(url.toString()) for url in web]
        if others:
            listed = ", ".join(_short(url.toString(), 60) for url in others)
            notes.append(f"Only files and http(s) links can be read, not {listed}.")
        if not rows and not notes:
            if pasted:
                notes.append("The clipboard holds no image, file or link to read: copy an image first.")
            else:
                notes.append("Nothing to read in what was dropped: drop image or PDF files, or an image.")
        if notes:
            self.show_message(" ".join(notes), error=not rows)
        return rows

    def submit_files(self, paths: Iterable[Path]) -> list[JobRow]:
        """Queue each file; its sidecar is written next to it when it is read."""
        rows = []
        for path in paths:
            row = self._add_row(path.name, path)
            self._submit(row, path)
            rows.append(row)
        return rows

    def submit_image(self, image: QImage, *, pasted: bool = False) -> JobRow:
        """Queue image data (no file, so no sidecar); it is encoded as PNG in the thread pool."""
        what = "Pasted image" if pasted else "Dropped image"
        row = self._add_row(f"{what} {next(self._images)} ({image.width()}×{image.height()})", None)
        row.set_state("preparing", "Preparing the image…")
        copy = image.copy()  # the worker encodes its own copy; the caller may reuse the original
        self._in_pool(lambda: png_bytes(copy), lambda data, error: self._prepared(row, data, error))
        return row

    def submit_url(self, url: str) -> JobRow:
        """Download the image or PDF at ``url`` in the thread pool, then queue it (no sidecar)."""
        name = unquote(Path(urlsplit(url).path).name) or urlsplit(url).hostname or url
        row = self._add_row(name, None)
        row.name_label.setToolTip(url)
        row.set_state("preparing", f"Downloading {_short(url)}…")
        self._in_pool(
            lambda: download(url, abort=row.abort), lambda data, error: self._prepared(row, data, error)
        )
        return row

    def paste(self) -> list[JobRow]:
        """Read what is on the clipboard: an image, copied files, or a link."""
        mime = QGuiApplication.clipboard().mimeData()
        if mime is None:
            self.show_message("The clipboard is empty: copy an image first.", error=True)
            return []
        return self.handle_mime(mime, pasted=True)

    def open_files(self) -> list[JobRow]:
        """Choose files in a dialog and queue them."""
        patterns = " ".join(f"*{suffix}" for suffix in sorted(SUPPORTED_SUFFIXES))
        names, _ = QFileDialog.getOpenFileNames(
            self, "Read images or PDFs", "", f"Images and PDFs ({patterns});;All files (*)"
        )
        self.show_message("")
        return self.submit_files(Path(name) for name in names)

    def cancel(self, row: JobRow) -> None:
        """Cancel ``row``: its job (a VLM stops mid-page), or its download or encoding."""
        if row.finished:
            return
        row.abort.set()
        if row.job_id is None:
            row.set_state("cancelled", "Cancelled")
            self._update_clear()
            return
        if self.bridge.cancel(row.job_id) and not row.finished:  # the bridge may report it at once
            row.set_state("cancelling", "Cancelling…")

    def show_row(self, row: JobRow) -> None:
        """Show ``row``'s result (or what it has streamed so far) in the result view."""
        if row.result is None:
            return
        self._shown = row
        self.result_view.set_result(row.result, row.sidecar)
        self._show_result_view()

    def clear_finished(self) -> None:
        """Remove the rows that are done, failed or cancelled."""
        for row in [row for row in self.rows if row.finished]:
            self.rows.remove(row)
            if row.job_id is not None:
                self._by_job.pop(row.job_id, None)
            row.setParent(None)
            row.deleteLater()
        self._update_empty()
        self._update_clear()

    # -- Qt events -----------------------------------------------------------------------------------

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:
        if self._acceptable(event.mimeData()):
            event.acceptProposedAction()
            self._highlight(True)
        else:
            event.ignore()

    def dragMoveEvent(self, event: QDragMoveEvent) -> None:
        if self._acceptable(event.mimeData()):
            event.acceptProposedAction()
        else:
            event.ignore()

    def dragLeaveEvent(self, event: QDragLeaveEvent) -> None:
        self._highlight(False)
        event.accept()

    def dropEvent(self, event: QDropEvent) -> None:
        self._highlight(False)
        self.handle_mime(event.mimeData())
        event.acceptProposedAction()

    def keyPressEvent(self, event: QKeyEvent) -> None:
        if event.matches(QKeySequence.StandardKey.Paste):
            self.paste()
            event.accept()
            return
        super().keyPressEvent(event)

    # -- rows ----------------------------------------------------------------------------------------

    def _add_row(self, label: str, path: Path | None) -> JobRow:
        row = JobRow(label, path, self._rows_widget)
        row.cancel_button.clicked.connect(lambda: self.cancel(row))
        row.show_button.clicked.connect(lambda: self.show_row(row))
        self._rows_layout.insertWidget(self._rows_layout.count() - 1, row)  # above the stretch
        self.rows.append(row)
        self._update_empty()
        QTimer.singleShot(0, self, lambda: self.scroll.ensureWidgetVisible(row))
        return row

    def _submit(self, row: JobRow, source: Path | bytes) -> None:
        row.set_state("queued", "Queued")
        self._submitting = row  # a failure at submission is reported before submit() returns the id
        try:
            job_id = self.bridge.submit(source, priority=Priority.INTERACTIVE)
        finally:
            self._submitting = None
        if not row.finished:  # the bridge may have reported a failure at submission already
            row.job_id = job_id
            self._by_job[job_id] = row

    def _prepared(self, row: JobRow, data: bytes | None, error: str | None) -> None:
        if row.finished:  # cancelled while downloading or encoding
            return
        if error is not None:
            row.error = error
            row.set_state("failed", error)
            self._update_clear()
            return
        assert data is not None
        self._submit(row, data)

    def _show_result_view(self) -> None:
        if self.result_view.isHidden():
            self.result_view.show()
            height = max(self.splitter.height(), 400)
            self.splitter.setSizes([height * 2 // 5, height - height * 2 // 5])

    def _update_empty(self) -> None:
        if self.history_list.isVisibleTo(self):  # a search is shown; the rows come back when it is cleared
            return
        empty = not self.rows
        self.hint_label.setVisible(empty)
        self.scroll.setVisible(not empty)

    def _update_clear(self) -> None:
        self.clear_button.setEnabled(any(row.finished for row in self.rows))

    def _highlight(self, on: bool) -> None:
        color = "palette(highlight)" if on else "palette(mid)"
        background = "background: palette(alternate-base);" if on else ""
        self.drop_area.setStyleSheet(
            f"#dropArea {{ border: 2px dashed {color}; border-radius: 10px; {background} }}"
        )

    @staticmethod
    def _acceptable(mime: QMimeData) -> bool:
        return mime.hasUrls() or mime.hasImage() or (mime.hasText() and _web_url(mime.text()) is not None)

    # -- the thread pool -----------------------------------------------------------------------------

    def _in_pool(self, work: Callable[[], Any], then: Callable[[Any, str | None], None]) -> None:
        """Run ``work`` in the pool; ``then(value, None)`` or ``then(None, message)`` on the GUI thread."""
        relay = self._relay

        def run() -> None:
            try:
                value = work()
            except _Aborted:
                log.debug("a drop window task was cancelled")
                return
            except (TextdropError, ValueError) as exc:
                outcome: tuple[Any, ...] = (relay.failed, then, str(exc))
            except Exception as exc:  # a bug: say so on the row, never fail silently
                log.exception("a drop window task failed")
                outcome = (relay.failed, then, f"unexpected error: {exc!r}")
            else:
                outcome = (relay.done, then, value)
            try:
                outcome[0].emit(*outcome[1:])
            except RuntimeError:  # the window was deleted meanwhile
                log.debug("drop window gone; a task's outcome is dropped")

        self._pool.start(run)

    def _relay_done(self, then: Callable[[Any, str | None], None], value: Any) -> None:
        then(value, None)

    def _relay_failed(self, then: Callable[[Any, str | None], None], message: str) -> None:
        then(None, message)

    def wait_for_tasks(self, msecs: int = -1) -> bool:
        """Wait for the pool's downloads, encodings and sidecar writes (for shutdown and tests)."""
        return self._pool.waitForDone(msecs)

    # -- job signals ---------------------------------------------------------------------------------

    def _row(self, job_id: int) -> JobRow | None:
        return self._by_job.get(job_id)

    def _started(self, job_id: int) -> None:
        row = self._row(job_id)
        if row is not None and row.state == "queued":
            row.set_state("reading", "Reading…")

    def _progress(self, job_id: int, done: int, total: int) -> None:
        row = self._row(job_id)
        if row is None or row.state not in ("queued", "reading"):
            return
        if done < total:
            row.set_state("reading", f"Reading page {done + 1} of {total}…", value=done, total=total)
        else:
            row.set_state("reading", f"Read {total} page{'' if total == 1 else 's'}", value=done, total=total)

    def _text(self, job_id: int, page: int, text: str) -> None:
        row = self._row(job_id)
        if row is None or row.finished:
            return
        if self._shown is not row:
            self._shown = row
            self.result_view.clear()
        self.result_view.set_streaming_text(page, text)
        self._show_result_view()

    def _finished(self, job_id: int, result: OcrResult) -> None:
        row = self._by_job.pop(job_id, None)
        if row is None:
            return
        row.result = result
        if row.path is not None and self.write_sidecars:
            row.set_state("writing", "Writing the sidecar…")
            path, template = row.path, self.template
            self._in_pool(
                lambda: write_sidecar(result, path, "md", template=template),
                lambda sidecar, error: self._complete(row, sidecar, error),
            )
        else:
            self._complete(row, None, None)

    def _complete(self, row: JobRow, sidecar: Path | None, error: str | None) -> None:
        result = row.result
        assert result is not None
        row.sidecar = sidecar
        pages = len(result.pages)
        status = f"Done · {pages} page{'' if pages == 1 else 's'} · {result.seconds:.1f} s"
        if sidecar is not None:
            status += f" · sidecar {sidecar.name}"
        if error is not None:
            row.error = f"The sidecar was not written: {error}"
            status += f" · {row.error}"
        row.set_state("done", status)
        self._update_clear()
        self.show_row(row)
        if self.on_result is not None:
            try:
                self.on_result(result, row.path, sidecar)
            except Exception:  # the tray's handler must not break the window
                log.exception("on_result failed for %s", row.label)

    def _failed(self, job_id: int, message: str) -> None:
        row = self._by_job.pop(job_id, None) or self._submitting
        if row is None:
            return
        row.error = message
        row.set_state("failed", message)
        self._update_clear()

    def _cancelled(self, job_id: int) -> None:
        row = self._by_job.pop(job_id, None)
        if row is not None:
            row.set_state("cancelled", "Cancelled")
            self._update_clear()
