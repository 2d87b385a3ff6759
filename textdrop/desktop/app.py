"""The tray app: QApplication, tray icon and menu, single instance, the job queue and the watcher.

``textdrop tray`` runs :func:`run_tray`. One process holds the one :class:`JobQueue` (its worker owns the
engine), the folder watcher (which shares that queue: a capture is INTERACTIVE and jumps ahead of any
folder backlog), the global hotkey, and the windows. The GUI thread only submits work and reacts to
signals (:class:`~textdrop.desktop.bridge.JobBridge`); engine loading, OCR and downloads never run on it.
"""

from __future__ import annotations

import contextlib
import logging
import logging.handlers
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from filelock import FileLock, Timeout
from PySide6.QtCore import QObject, Qt, QTimer, Signal
from PySide6.QtGui import QAction, QIcon, QImage
from PySide6.QtWidgets import QApplication, QMenu, QSystemTrayIcon

from textdrop.desktop.bridge import JobBridge, png_bytes
from textdrop.desktop.history import MENU as HISTORY_MENU
from textdrop.desktop.history import Entry, History
from textdrop.desktop.icons import APP_ICON_SIZES, icon_path
from textdrop.desktop.instance import InstanceServer, Reply
from textdrop.engine.errors import ExitCode, TextdropError
from textdrop.engine.jobs import JobQueue, Priority
from textdrop.settings import Settings, data_dir, ledger_path, load_settings, log_dir, watch_lock_path

if TYPE_CHECKING:
    from textdrop.desktop.clipboard.content import ClipboardContent
    from textdrop.engine.registry import RecognizeOptions
    from textdrop.engine.result import OcrResult
    from textdrop.watcher.service import FileEvent, WatchService

log = logging.getLogger(__name__)

TRAY_LOG = "tray.log"
"""The tray app's log file, in the log folder (:func:`textdrop.settings.log_dir`)."""
LOG_BYTES = 1_000_000
LOG_BACKUPS = 3
"""The log file rotates at about 1 MB, keeping three old ones (as ``textdrop watch`` does)."""
HISTORY_FILE = "history.jsonl"
"""Recent results, in the data folder (:mod:`textdrop.desktop.history`)."""

SHUTDOWN_TASKS_MS = 5000
"""Milliseconds Quit waits for the drop window's background tasks (sidecar writes, downloads)."""

HANDOVER_WAIT_S = 1.0
"""Seconds Quit waits for the clipboard tool to take over the selection (it takes milliseconds)."""

MENU_CLOSE_MS = 150
"""Milliseconds between choosing Capture region in the menu and freezing the screens (the menu fades)."""


def tray_log_path() -> Path:
    """The tray app's current log file."""
    return log_dir() / TRAY_LOG


def log_to_file() -> logging.Handler:
    """Log INFO and above to the tray's rotating log file; returns the handler, for the caller to remove."""
    log_dir().mkdir(parents=True, exist_ok=True)
    handler = logging.handlers.RotatingFileHandler(
        tray_log_path(), maxBytes=LOG_BYTES, backupCount=LOG_BACKUPS, encoding="utf-8"
    )
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.setLevel(logging.INFO)
    root = logging.getLogger()
    root.addHandler(handler)
    root.setLevel(min(root.level, logging.INFO) if root.level else logging.INFO)
    return handler


def tray_icon(busy: bool = False, theme: str = "auto") -> QIcon:
    """The tray icon: amber while the engine works; otherwise a dark glyph for a light panel or a light
    glyph for a dark one (``assets/icons/textdrop.svg``, ``make_icons.py``).

    Args:
        busy: the engine is working.
        theme: the panel: ``"light"`` (a dark glyph), ``"dark"`` (a light glyph), or ``"auto"``: after the
            desktop's colour scheme (Qt 6.5+ reads it from the platform), else the palette's window colour.
    """
    if busy:
        return QIcon(str(icon_path("tray-busy.png")))
    if theme == "auto":
        scheme = QApplication.styleHints().colorScheme()
        if scheme == Qt.ColorScheme.Unknown:
            dark_panel = QApplication.palette().window().color().lightness() < 128
        else:
            dark_panel = scheme == Qt.ColorScheme.Dark
        theme = "dark" if dark_panel else "light"
    return QIcon(str(icon_path(f"tray-{theme}.png")))


def app_icon() -> QIcon:
    """The application icon (windows, notifications), every rendered size."""
    icon = QIcon()
    for size in APP_ICON_SIZES:
        icon.addFile(str(icon_path(f"textdrop-{size}.png")))
    return icon


def capture_options(settings: Settings) -> RecognizeOptions:
    """Recognition options for a screen capture: the configured ones, minus page orientation detection
    (what is on a screen is upright; skipping the direction classifier saves about 50 ms a capture)."""
    return settings.recognize.model_copy(update={"detect_orientation": False})


SUPERVISE_MS = 500
"""How often the tray checks the watcher's threads (WatchService.check), in milliseconds."""


class TrayApp(QObject):
    """Everything the tray process runs; build it with :meth:`start`, end it with :meth:`shutdown`.

    Signals:
        busy_changed(bool): the job worker started or finished a desktop job.
        engine_state(str): the default engine finished loading: ``"ready"`` or ``"failed: …"``.
        watch_event(object): a :class:`FileEvent` from the watcher, re-emitted on the GUI thread.
    """

    busy_changed = Signal(bool)
    watch_event = Signal(object)
    engine_state = Signal(str)

    def __init__(self, app: QApplication, settings: Settings, *, watch: bool = True) -> None:
        super().__init__()
        self.app = app
        self.settings = settings
        self._watch_enabled = watch
        self.queue: JobQueue = None  # type: ignore[assignment]  # created by start(), after the icon shows
        self.bridge: JobBridge = None  # type: ignore[assignment]
        self.server = InstanceServer(self)
        self.tray = QSystemTrayIcon(tray_icon(theme=settings.desktop.tray_icon), self)
        self.menu = QMenu()
        self.history = History(data_dir() / HISTORY_FILE)
        self._drop_batch = 0  # results of the current drop so far (see _dropped)
        self.paused: set[Path] = set()
        self.watcher: WatchService | None = None
        self._supervisor: QTimer | None = None  # calls WatchService.check() while folders are watched
        self.watch_error: str | None = None  # why the watcher stopped by itself, until it is started again
        self.api: Any = None  # the HTTP API server, when [server] enabled
        self._ledger: Any = None
        self._watch_lock = FileLock(watch_lock_path())  # one watcher per user, as `textdrop watch`
        self._engine_state = "loading…"
        self._engine_loaded_state = "loading…"  # what the engine is when it is not working
        self._pending: dict[int, str] = {}  # job id → what it is ("capture", "clipboard image", …)
        self._drop_window: Any = None
        self._settings_dialog: Any = None
        self._views: list[Any] = []
        self._engine_action: QAction | None = None
        self._capture: Any = None
        self._capture_reply: Reply | None = None
        self._replies: dict[int, Reply] = {}  # job id → the reply owed to `textdrop capture`
        self._closed = False
        self._hotkey_problem = ""  # why the hotkey could not be registered, once notified
        from textdrop.desktop.capture.hotkey import HotkeyListener
        from textdrop.desktop.notify import Notifier

        self.notifier = Notifier(self.tray)
        self.hotkey = HotkeyListener(self)

    # -- lifecycle -----------------------------------------------------------------------------------

    def start(self) -> bool:
        """Listen on the instance socket, show the tray icon, create and start the queue (loading the
        engine in the worker), then the watcher and the hotkey. False when another tray app already runs.

        The icon is shown and its dock request sent before the queue is created: choosing ``auto``'s
        engine imports a VLM runtime to look for a GPU (about 0.3 s), which the icon need not wait for.

        Raises:
            EngineUnavailableError: the configured engine is unknown or cannot run here.
        """
        if not self.server.listen():
            return False
        self.tray.setToolTip("textdrop: starting…")
        self.tray.setContextMenu(self.menu)
        self._build_menu()
        self.tray.show()
        self.app.processEvents()  # the dock request reaches the system tray now
        try:
            self.queue = JobQueue(
                self.settings.engine,
                options=self.settings.recognize,
                limits=self.settings.sources,
                backends=self.settings.backends(),
                name="textdrop-tray-jobs",
            )
        except TextdropError:
            self.tray.hide()
            self.server.close()
            raise
        self.bridge = JobBridge(self.queue, self)
        self.server.request.connect(self.handle_request)
        self.server.waited.connect(lambda _command, reply: self.capture(reply))
        self.bridge.finished.connect(self._finished)
        self.bridge.failed.connect(self._failed)
        self.bridge.started.connect(lambda _id: self.busy_changed.emit(True))
        self.busy_changed.connect(self._busy)
        self.watch_event.connect(self._watched)
        self.engine_state.connect(self._show_engine_state)
        self.hotkey.activated.connect(self.capture)
        self.tray.setToolTip(f"textdrop: loading {self.queue.engine}…")
        self.menu.aboutToShow.connect(self._build_menu)
        self.tray.activated.connect(self._activated)
        self.queue.start()
        self.queue.loaded.add_done_callback(self._engine_loaded)
        QTimer.singleShot(0, self._start_background)  # the icon first, then the slower parts
        return True

    def _busy(self, busy: bool) -> None:
        self.tray.setIcon(tray_icon(busy, self.settings.desktop.tray_icon))
        self._engine_state = "working…" if busy else self._engine_loaded_state
        self._update_engine_display()

    def _start_background(self) -> None:
        self._apply_hotkey()
        if self._watch_enabled:
            self._restart_watcher()
        self._start_api()

    def _start_api(self) -> None:
        """The HTTP API over this queue, when ``[server] enabled`` (see textdrop.server.run)."""
        from textdrop.server.run import start_in_background

        try:
            self.api = start_in_background(self.settings, self.queue)
        except TextdropError as exc:
            self.notifier.show("textdrop: the HTTP API did not start", str(exc), error=True)

    def shutdown(self) -> None:
        """Stop the hotkey, the watcher and the queue (the running page may finish), close the socket.
        Idempotent."""
        if self._closed:
            return
        self._closed = True
        self._hand_over_clipboard()
        self.hotkey.stop()
        if self.api is not None:
            self.api.stop()
        self._stop_watcher()
        if self._drop_window is not None:  # a sidecar being written finishes; a stalled download does not
            self._drop_window.wait_for_tasks(SHUTDOWN_TASKS_MS)
        if self.queue is not None:
            self.queue.stop(grace=self.settings.watch.grace_seconds)
        if self._ledger is not None:
            self._ledger.close()
        if self._watch_lock.is_locked:
            self._watch_lock.release()
        self.server.close()
        self.tray.hide()

    def _hand_over_clipboard(self) -> None:
        """Qt serves our clipboard item from this process (X11, Wayland): before it exits, hand the plain
        text to a tool that keeps serving it (xclip, wl-copy …), so a result copied last is not lost."""
        from PySide6.QtGui import QClipboard

        from textdrop.desktop.clipboard import copy_text

        clipboard = QApplication.clipboard()
        if clipboard is None or not clipboard.ownsClipboard():
            return
        text = clipboard.text(QClipboard.Mode.Clipboard)
        if not text:
            return
        try:
            handler = copy_text(text, persistent=True)
        except TextdropError as exc:
            log.warning("the clipboard empties as textdrop exits: %s", exc)
            return
        # The tool's background copy takes the selection a moment after the tool returns; wait for it, so
        # that nothing copied after we exit is overtaken by it.
        deadline = time.monotonic() + HANDOVER_WAIT_S
        while clipboard.ownsClipboard() and time.monotonic() < deadline:
            self.app.processEvents()
            time.sleep(0.005)
        log.info("handed the clipboard over to %s", handler)

    def quit(self) -> None:
        self.shutdown()
        self.app.quit()

    # -- requests ------------------------------------------------------------------------------------

    def handle_request(self, command: str) -> None:
        """Run a command from the instance socket or the menu (GUI thread)."""
        log.info("request: %s", command)
        if command == "capture":
            self.capture()
        elif command == "show":
            self.show_drop_window()
        elif command == "ocr-clipboard":
            self.ocr_clipboard()
        elif command == "settings":
            self.show_settings()
        elif command == "quit":
            self.quit()

    def capture(self, reply: Reply | None = None) -> None:
        """Freeze the screens and let the user drag a region; its text goes to the clipboard.

        Args:
            reply: for ``textdrop capture``: called once with ``"<exit code> <message>"`` when the capture
                has ended (copied, cancelled, failed).
        """
        from textdrop.desktop.capture.overlay import CaptureSession

        if self._capture is not None:  # one capture at a time; a second hotkey press while selecting
            if reply is not None:
                reply(f"{ExitCode.OTHER_ERROR} a capture is already running")
            return
        self._capture_reply = reply
        self._capture = CaptureSession(self, hotkey=self._hotkey_label() if self.hotkey.running else "")
        self._capture.captured.connect(self._captured)
        self._capture.cancelled.connect(self._capture_cancelled)
        self._capture.failed.connect(self._capture_failed)
        self._capture.start()

    def _capture_cancelled(self) -> None:
        reply = self._capture_ended()
        if reply is not None:
            reply(f"{ExitCode.INTERRUPTED} cancelled")

    def _capture_failed(self, message: str) -> None:
        reply = self._capture_ended()
        self.notifier.show("textdrop: the screen could not be captured", message, error=True)
        if reply is not None:
            reply(f"{ExitCode.OTHER_ERROR} {message}")

    def _captured(self, image: QImage) -> None:
        reply = self._capture_ended()
        options = capture_options(self.settings)
        job_id = self.bridge.submit(png_bytes(image), priority=Priority.INTERACTIVE, options=options)
        self._pending[job_id] = "capture"
        if reply is not None:
            self._replies[job_id] = reply

    def _capture_ended(self) -> Reply | None:
        """Forget the capture session; returns the reply still owed to ``textdrop capture``, if any."""
        if self._capture is not None:
            self._capture.deleteLater()
            self._capture = None
        reply, self._capture_reply = self._capture_reply, None
        return reply

    def ocr_clipboard(self) -> None:
        """Recognise the image on the clipboard, if there is one."""
        from textdrop.desktop.clipboard import read_image

        image = read_image()
        if image is None or image.isNull():
            self.notifier.show("textdrop", "There is no image on the clipboard.", error=True)
            return
        self._pending[self.bridge.submit(png_bytes(image), priority=Priority.INTERACTIVE)] = "clipboard image"

    def show_drop_window(self) -> None:
        """Open the drop window, or bring it to the front (restored when it was minimized)."""
        from textdrop.desktop.drop_window import DropWindow

        if self._drop_window is None:
            self._drop_window = DropWindow(
                self.bridge,
                template=self.settings.sidecar.template,
                on_result=self._dropped,
                history=self.history,
            )
        self._drop_window.present()

    def show_settings(self, tab: str | None = None) -> None:
        """Open the settings dialog showing the settings as they are now in config.toml (changed there or
        from the menu meanwhile), on ``tab`` (``"General"``, ``"Models"``, ``"Folders"``) when given."""
        from textdrop.desktop.settings_dialog import SettingsDialog

        if self._settings_dialog is None:
            self._settings_dialog = SettingsDialog(self.settings)
            self._settings_dialog.saved.connect(self.apply_settings)
        dialog = self._settings_dialog
        if not dialog.isVisible():  # an open dialog keeps the user's unsaved edits
            dialog.reload()
        if tab is not None:
            dialog.show_tab(tab)
        dialog.show()
        dialog.raise_()
        dialog.activateWindow()

    def show_log(self) -> bool:
        """Open the tray's log file with the desktop's default application; False (and a notification)
        when the desktop could not open it."""
        from textdrop.desktop.result_view import open_path

        path = tray_log_path()
        if open_path(path):
            return True
        self.notifier.show(
            "textdrop: the log could not be opened",
            f"The desktop has no application for {path.name}. Open {path} in a text editor.",
            error=True,
        )
        return False

    def show_result(self, entry: Entry) -> None:
        from textdrop.desktop.result_view import ResultView

        view = ResultView(copy=self._copy)
        view.set_result(entry.result(), Path(entry.sidecar) if entry.sidecar else None)
        view.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        view.destroyed.connect(lambda *_: self._views.remove(view) if view in self._views else None)
        self._views.append(view)
        view.show()

    def apply_settings(self, settings: Settings) -> None:
        """Apply saved settings without a restart: hotkey, watched folders, options; a new engine spec
        takes effect for the next job (its engine is created on first use)."""
        engine_changed = settings.engine != self.settings.engine
        self.settings = settings
        self._apply_hotkey()
        if self._watch_enabled:
            self._restart_watcher()
        if self._drop_window is not None:
            self._drop_window.template = settings.sidecar.template
        if engine_changed:
            self.bridge.engine = settings.engine
            self._engine_state = self._engine_loaded_state = "loads at the next job"
            log.info("engine for new jobs: %s", settings.engine)
        self.tray.setIcon(tray_icon(theme=settings.desktop.tray_icon))
        self._build_menu()

    # -- results -------------------------------------------------------------------------------------

    def _finished(self, job_id: int, result: OcrResult) -> None:
        self.busy_changed.emit(False)
        what = self._pending.pop(job_id, None)
        reply = self._replies.pop(job_id, None)
        if what is None:  # a drop window job: the window reports it through _dropped
            return
        code, message = self._deliver(result, None, what)
        if reply is not None:
            reply(f"{code} {message}")

    def _failed(self, job_id: int, message: str) -> None:
        self.busy_changed.emit(False)
        what = self._pending.pop(job_id, None)
        reply = self._replies.pop(job_id, None)
        if what is None:  # a drop window job: its row shows the failure
            return
        self.notifier.show(f"textdrop: the {what} could not be read", _with_advice(message), error=True)
        if reply is not None:
            reply(f"{ExitCode.OTHER_ERROR} {message}")

    def _dropped(self, result: OcrResult, source: Path | None, sidecar: Path | None) -> None:
        """A drop window result. Of a batch, only the last to finish is copied (with one notification
        that says so); each is remembered, and shown in the window."""
        what = source.name if source else "dropped image"
        window = self._drop_window
        batch = self._drop_batch = self._drop_batch + 1
        if window is not None and window.pending:  # more of this drop are still being read
            self._remember(result, what, sidecar)
            return
        self._drop_batch = 0
        self._deliver(result, sidecar, what, batch=batch)

    def _remember(self, result: OcrResult, what: str, sidecar: Path | None) -> Entry | None:
        entry = Entry.of(result, what, sidecar)
        return entry if self.history.add(entry) else None

    def _deliver(
        self, result: OcrResult, sidecar: Path | None, what: str, *, batch: int = 1
    ) -> tuple[int, str]:
        """Clipboard, notification and history for a finished desktop job.

        Returns:
            The exit code and message for ``textdrop capture``: 0 when the text was copied (or shown,
            with copying turned off), non-zero when no text was found or the clipboard refused it.
        """
        from textdrop.desktop.clipboard.content import result_content

        if result.warnings:  # text was found that nothing installed reads: never a silent empty result
            self.notifier.show(
                f"textdrop: not all of the {what} could be read", result.warnings[0], error=True
            )
        if result.fallbacks:  # the VLM failed on pages: never shown as the VLM's success
            self.notifier.show(_fallback_title(len(result.fallbacks)), result.fallback_notes()[0], error=True)
        content = result_content(result, markdown_as_text=self.settings.desktop.copy_markdown)
        if not content.text:
            self.notifier.show("textdrop: no text found", f"The {what} holds no text textdrop can read.")
            return ExitCode.OTHER_ERROR, "no text found"
        entry = self._remember(result, what, sidecar)
        copied = self.settings.desktop.copy_results and self._copy(content)
        if copied is None:
            return ExitCode.OUTPUT, "the clipboard refused the text"
        if self.settings.desktop.notify:
            lines = content.text.count("\n") + 1
            detail = f"{lines} line{'s' if lines != 1 else ''} from the {what}"
            if batch > 1:
                detail = f"{what}, the last of {batch} files (each result is in the drop window)"
            title = "Copied: " + _first_line(content.text, 60) if copied else f"Read the {what}"
            on_click = (lambda: self.show_result(entry)) if entry is not None else None
            self.notifier.show(title, detail, on_click=on_click)
        return ExitCode.OK, f"copied {len(content.text)} characters" if copied else "read (copying is off)"

    def _copy(self, content: str | ClipboardContent) -> bool | None:
        """Put ``content`` on the clipboard (the tray's Qt clipboard first: it offers every format);
        True when copied, None (and an error notification) when no clipboard took it."""
        from textdrop.desktop.clipboard import copy_text

        try:
            handler = copy_text(content, persistent=False)
        except TextdropError as exc:
            self.notifier.show("textdrop: nothing was copied", str(exc), error=True)
            return None
        log.info("copied to the clipboard with %s", handler)
        return True

    # -- watcher ---------------------------------------------------------------------------------------

    def _restart_watcher(self) -> None:
        from textdrop.watcher.ledger import Ledger
        from textdrop.watcher.service import WatchService

        self._stop_watcher()
        self.watch_error = None
        folders = [f for f in self.settings.folders if f.path not in self.paused]
        if not folders:
            return
        if not self._watch_lock.is_locked:
            try:
                data_dir().mkdir(parents=True, exist_ok=True)
                self._watch_lock.acquire(timeout=0)
            except Timeout:
                message = "`textdrop watch` is already watching the folders; the tray leaves them to it."
                self.notifier.show("textdrop: folders are not watched here", message)
                return
        if self._ledger is None:
            self._ledger = Ledger(ledger_path())
        watcher = WatchService(
            folders,
            ledger=self._ledger,
            jobs=self.queue,
            options=self.settings.watch,
            limits=self.settings.sources,
            template=self.settings.sidecar.template,
            on_event=self.watch_event.emit,  # from the watcher's threads; delivered on the GUI thread
        )
        try:
            watcher.start()
        except TextdropError as exc:
            self.notifier.show("textdrop: folders are not watched", str(exc), error=True)
            return
        self.watcher = watcher
        if self._supervisor is None:
            self._supervisor = QTimer(self)
            self._supervisor.timeout.connect(self._check_watcher)
        self._supervisor.start(SUPERVISE_MS)

    def _check_watcher(self) -> None:
        """Supervise the watcher (ADR 009): a dead service is stopped and the user told why, never left
        looking alive."""
        if self.watcher is None:
            return
        try:
            self.watcher.check()
        except TextdropError as exc:
            log.error("the folder watcher stopped: %s", exc)
            self._stop_watcher()
            self.watch_error = str(exc)
            self.notifier.show("textdrop: folders are no longer watched", str(exc), error=True)

    def _stop_watcher(self) -> None:
        if self._supervisor is not None:
            self._supervisor.stop()
        if self.watcher is not None:
            self.watcher.stop()
            self.watcher = None

    def _watched(self, event: FileEvent) -> None:
        folder = next((f for f in self.settings.folders if event.path.is_relative_to(f.path)), None)
        if folder is None:
            return
        if event.status == "failed":
            self.notifier.show(
                f"textdrop: {event.path.name} could not be read",
                f"{event.message} It is in {event.path.parent}; textdrop retries it when the file changes.",
                error=True,
            )
            return
        if event.status not in ("done", "reused"):
            return
        result_text = event.markdown.strip()
        if event.warnings:
            self.notifier.show(
                f"textdrop: not all of {event.path.name} could be read", event.warnings[0], error=True
            )
        if event.fallbacks:
            title = f"{_fallback_title(len(event.fallbacks))} of {event.path.name}"
            self.notifier.show(title, event.fallbacks[0], error=True)
        if folder.clipboard and result_text:
            from textdrop.desktop.clipboard.content import markdown_content

            self._copy(markdown_content(result_text, markdown_as_text=self.settings.desktop.copy_markdown))
        if folder.notify:
            self.notifier.show(f"Read {event.path.name}", _first_line(result_text) or "(no text)")

    def toggle_pause(self, folder: Path) -> None:
        """Pause or resume watching one folder (until the app quits)."""
        self.paused.symmetric_difference_update({folder})
        self._restart_watcher()

    # -- hotkey, menu, engine --------------------------------------------------------------------------

    def _apply_hotkey(self) -> None:
        """(Re)register the capture hotkey; when it cannot be had, log it and say so once in a notification
        (each reason once: settings applied again with the same problem stay quiet)."""
        self.hotkey.stop()
        usable, why = self.hotkey.available()
        if not usable or not self.hotkey.start(self.settings.desktop.hotkey):
            reason = why or self.hotkey.error or "the desktop refused it"
            log.warning("no global hotkey: %s", reason)
            if reason != self._hotkey_problem:
                self._hotkey_problem = reason
                self.notifier.show("textdrop: no capture hotkey", reason, error=True)
        else:
            self._hotkey_problem = ""

    def _engine_loaded(self, future: Any) -> None:
        """Called in the worker thread when the default engine loaded (or failed to)."""
        if future.cancelled():
            return
        error = future.exception()
        self.engine_state.emit("ready" if error is None else f"failed: {error}")

    def _show_engine_state(self, state: str) -> None:
        """The default engine loaded (``"ready"``) or failed (``"failed: …"``): show it, and say so in a
        notification when it failed."""
        self._engine_state = self._engine_loaded_state = state
        self._update_engine_display()
        if state.startswith("failed"):
            self.notifier.show(
                "textdrop: the engine did not load",
                f"{state.removeprefix('failed: ')} Choose another engine in the tray menu, or fix it in "
                f"Settings; the log ({tray_log_path()}) has the details.",
                error=True,
            )

    def _update_engine_display(self) -> None:
        """Show the engine's state in the tooltip and, live, in the open menu's Engine entry."""
        from textdrop.desktop.engines import engine_title

        title = engine_title(self.bridge.engine or self.queue.engine)
        self.tray.setToolTip(f"textdrop: {title}, {self._engine_state}")
        if self._engine_action is not None:
            with contextlib.suppress(RuntimeError):  # the menu was rebuilt meanwhile
                self._engine_action.setText(self._engine_label())

    def _engine_label(self) -> str:
        from textdrop.desktop.engines import engine_title

        state = self._engine_state
        if state.startswith("failed"):  # the reason is in the notification and the log
            state = "failed"
        return f"Engine: {engine_title(self.settings.engine)} ({state})"

    def set_engine(self, spec: str) -> None:
        """Use engine ``spec`` from now on: saved to config.toml and applied (from the Engine menu)."""
        from textdrop.settings import edit_settings

        try:
            settings = edit_settings(lambda document: document.__setitem__("engine", spec))
        except TextdropError as exc:
            self.notifier.show("textdrop: the engine was not changed", str(exc), error=True)
            return
        self.apply_settings(settings)

    def _fill_engine_menu(self, menu: QMenu) -> None:
        """Engines to choose from: auto, the embedded one, and each downloaded catalogue model on each
        installed VLM backend (listed when the submenu opens: the hub cache is looked at then)."""
        from textdrop.desktop.engines import engine_title
        from textdrop.engine.models.catalog import CATALOG
        from textdrop.engine.models.download import is_downloaded
        from textdrop.engine.registry import engine_class

        menu.clear()
        choices = ["auto", "rapid"]
        for backend in ("llama", "mlx"):
            if engine_class(backend).is_available():
                choices += [f"{backend}:{e.id}" for e in CATALOG if is_downloaded(e, backend)]
        current = self.settings.engine
        for spec in dict.fromkeys([*choices, current]):
            action = self._action(menu, engine_title(spec), lambda spec=spec: self.set_engine(spec))
            action.setData(spec)
            action.setToolTip(spec)
            action.setCheckable(True)
            action.setChecked(spec == current)
        menu.addSeparator()
        self._action(menu, "Download models…", lambda: self.show_settings("Models"))

    def _activated(self, reason: QSystemTrayIcon.ActivationReason) -> None:
        if reason == QSystemTrayIcon.ActivationReason.Trigger:
            self.show_drop_window()

    def _hotkey_label(self) -> str:
        """The capture hotkey as menus write it (``Ctrl+Alt+O``)."""
        from textdrop.desktop.capture.hotkey import display_hotkey

        try:
            return display_hotkey(self.settings.desktop.hotkey)
        except ValueError:
            return self.settings.desktop.hotkey

    def _build_menu(self) -> None:
        menu = self.menu
        menu.clear()
        shortcut = self._hotkey_label()
        # after the menu has closed, or the frozen screens would show it
        self._action(
            menu, f"Capture region\t{shortcut}", lambda: QTimer.singleShot(MENU_CLOSE_MS, self.capture)
        )
        self._action(menu, "Open drop window", self.show_drop_window)
        self._action(menu, "OCR image on clipboard", self.ocr_clipboard)
        recent = menu.addMenu("Recent results")
        entries = self.history.entries[:HISTORY_MENU]
        recent.setEnabled(bool(entries))
        for entry in entries:
            label = f"{entry.local_time()}  {entry.what}: {_first_line(entry.text, 50)}"
            self._action(recent, label, lambda entry=entry: self.show_result(entry))
        folders = menu.addMenu("Watched folders")
        backlog = self.watcher.backlog if self.watcher is not None else 0
        running = "watching" if self.watcher is not None else "not watched"
        for folder in self.settings.folders:
            state = "paused" if folder.path in self.paused else running
            self._action(folders, f"{folder.path}  ({state})", lambda p=folder.path: self.toggle_pause(p))
        if not self.settings.folders:
            folders.addAction("No folders yet").setEnabled(False)
        folders.addSeparator()
        folders.addAction(f"Backlog: {backlog} file{'s' if backlog != 1 else ''}").setEnabled(False)
        if self.watch_error is not None:  # the notification said why; the cause may be fixed by now
            self._action(folders, "Watch again", self._restart_watcher)
        self._action(folders, "Add or remove folders…", lambda: self.show_settings("Folders"))
        engine = menu.addMenu(self._engine_label())
        self._engine_action = engine.menuAction()
        engine.aboutToShow.connect(lambda: self._fill_engine_menu(engine))
        menu.addSeparator()
        self._action(menu, "Settings…", self.show_settings)
        self._action(menu, "Open log", self.show_log)
        self._action(menu, "Quit", self.quit)

    @staticmethod
    def _action(menu: QMenu, text: str, slot: Any) -> QAction:
        action = menu.addAction(text)
        action.triggered.connect(lambda *_checked: slot())  # slot takes no arguments
        return action


def _with_advice(message: str) -> str:
    """A failure message for a notification: the reason, then what to do and where the details are."""
    return (
        f"{message.rstrip('.')}. Try again; if it keeps failing, choose another engine in the tray menu's "
        f"Engine entry. Details: {tray_log_path()}"
    )


def _first_line(text: str, limit: int = 80) -> str:
    line = next(
        (line.strip("#*|- ").strip() for line in text.splitlines() if line.strip("#*|- ").strip()), ""
    )
    return line if len(line) <= limit else line[: limit - 1] + "…"


def run_tray(*, watch: bool = True) -> int:
    """``textdrop tray``: hand the request to a running tray app, or become it; returns the exit code."""
    from textdrop.desktop.instance import send_request

    if send_request("show") is not None:
        print("textdrop is already running; its drop window was opened.")
        return ExitCode.OK
    settings = load_settings()
    app = QApplication.instance() or QApplication(["textdrop"])
    app.setApplicationName("textdrop")
    app.setWindowIcon(app_icon())
    app.setQuitOnLastWindowClosed(False)
    if not QSystemTrayIcon.isSystemTrayAvailable():
        log.warning("this desktop shows no system tray; use the drop window and `textdrop capture`")
    handler = log_to_file()
    tray = TrayApp(app, settings, watch=watch)
    if not tray.start():
        print("textdrop is already running.")
        logging.getLogger().removeHandler(handler)
        return ExitCode.OK
    import signal

    signal.signal(signal.SIGTERM, lambda *_: QTimer.singleShot(0, tray.quit))
    signal.signal(signal.SIGINT, lambda *_: QTimer.singleShot(0, tray.quit))
    ticker = QTimer()
    ticker.start(250)  # lets Python run its signal handlers while Qt's loop waits
    ticker.timeout.connect(lambda: None)
    try:
        return app.exec()
    finally:
        tray.shutdown()
        logging.getLogger().removeHandler(handler)
        handler.close()


def run_capture() -> int:
    """``textdrop capture``: ask the running tray app to capture, or capture in this process.

    Without a tray app: freeze the screens, let the user drag a region while the engine loads in the
    worker, recognise it, put the text on the clipboard (a tool that keeps it after exit), notify, and
    print it. With a tray app, wait until its capture has ended and return its code. Returns
    :attr:`ExitCode.OK`, :attr:`ExitCode.INTERRUPTED` when the user pressed Esc, or the error's exit code.
    """
    from textdrop.desktop.instance import send_request

    answer = send_request("capture", answer_timeout_ms=-1)
    if answer is not None:
        code, _, message = answer.partition(" ")
        if not code.isdigit():
            print(f"textdrop: the tray app answered {answer!r}", file=sys.stderr)
            return ExitCode.OTHER_ERROR
        if int(code) != ExitCode.OK:
            print(f"textdrop: {message}", file=sys.stderr)
        return int(code)
    from textdrop.desktop.capture.overlay import CaptureSession
    from textdrop.desktop.clipboard import copy_text
    from textdrop.desktop.notify import Notifier

    settings = load_settings()
    app = QApplication.instance() or QApplication(["textdrop"])
    app.setQuitOnLastWindowClosed(False)  # the overlays close before the region is read
    queue = JobQueue(
        settings.engine, options=settings.recognize, limits=settings.sources, backends=settings.backends()
    )
    bridge = JobBridge(queue)
    notifier = Notifier(None)
    outcome: dict[str, Any] = {"code": ExitCode.INTERRUPTED}

    def finished(_job: int, result: OcrResult) -> None:
        from textdrop.desktop.clipboard.content import result_content

        content = result_content(result, markdown_as_text=settings.desktop.copy_markdown)
        text = content.text
        print(text)
        try:
            if text and settings.desktop.copy_results:
                copy_text(content)
            if settings.desktop.notify:
                notifier.show("Copied to the clipboard" if text else "No text found", _first_line(text))
            outcome["code"] = ExitCode.OK
        except TextdropError as exc:
            notifier.show("textdrop: nothing was copied", str(exc), error=True)
            outcome["code"] = exc.exit_code
        app.quit()

    def failed(_job: int, message: str) -> None:
        notifier.show("textdrop: the capture could not be read", message, error=True)
        print(message, file=sys.stderr)
        outcome["code"] = ExitCode.OTHER_ERROR
        app.quit()

    bridge.finished.connect(finished)
    bridge.failed.connect(failed)
    session = CaptureSession()
    options = capture_options(settings)
    session.captured.connect(
        lambda image: bridge.submit(png_bytes(image), priority=Priority.INTERACTIVE, options=options)
    )
    session.cancelled.connect(app.quit)
    session.failed.connect(lambda message: failed(0, message))
    with queue:  # the worker loads the engine while the user selects
        QTimer.singleShot(0, session.start)
        app.exec()
        queue.stop(grace=settings.watch.grace_seconds)
    return outcome["code"]


def _fallback_title(pages: int) -> str:
    """The notification title for ``pages`` pages the embedded engine read because the VLM failed."""
    return f"textdrop: the VLM failed on {pages} page{'s' if pages != 1 else ''}"
