"""The tray app: QApplication, tray icon and menu, single instance, the job queue and the watcher.

``textdrop tray`` runs :func:`run_tray`. One process holds the one :class:`JobQueue` (its worker owns the
engine), the folder watcher (which shares that queue: a capture is INTERACTIVE and jumps ahead of any
folder backlog), the global hotkey, and the windows. The GUI thread only submits work and reacts to
signals (:class:`~textdrop.desktop.bridge.JobBridge`); engine loading, OCR and downloads never run on it.
"""

from __future__ import annotations

import logging
import sys
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from filelock import FileLock, Timeout
from PySide6.QtCore import QObject, Qt, QTimer, Signal
from PySide6.QtGui import QAction, QIcon, QImage
from PySide6.QtWidgets import QApplication, QMenu, QSystemTrayIcon

from textdrop.desktop.bridge import JobBridge, png_bytes
from textdrop.desktop.icons import APP_ICON_SIZES, icon_path
from textdrop.desktop.instance import InstanceServer
from textdrop.engine.errors import ExitCode, TextdropError
from textdrop.engine.jobs import JobQueue, Priority
from textdrop.settings import Settings, data_dir, ledger_path, load_settings, watch_lock_path

if TYPE_CHECKING:
    from textdrop.engine.backends.base import RecognizeOptions
    from textdrop.engine.result import OcrResult
    from textdrop.watcher.service import FileEvent, WatchService

log = logging.getLogger(__name__)

RECENT = 10
"""Results kept in the Recent results menu."""

SHUTDOWN_TASKS_MS = 5000
"""Milliseconds Quit waits for the drop window's background tasks (sidecar writes, downloads)."""

MENU_CLOSE_MS = 150
"""Milliseconds between choosing Capture region in the menu and freezing the screens (the menu fades)."""


@dataclass
class Recent:
    """A result the tray remembers: a menu label, the Markdown, and the sidecar when there is one."""

    label: str
    result: OcrResult
    sidecar: Path | None


def tray_icon(busy: bool = False) -> QIcon:
    """The tray icon: amber while the engine works; otherwise a dark glyph on a light panel and a light
    glyph on a dark one, after the desktop palette (``assets/icons/textdrop.svg``, ``make_icons.py``)."""
    if busy:
        name = "tray-busy.png"
    else:
        dark_panel = QApplication.palette().window().color().lightness() < 128
        name = "tray-dark.png" if dark_panel else "tray-light.png"
    return QIcon(str(icon_path(name)))


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
        self.queue = JobQueue(
            settings.engine,
            options=settings.recognize,
            limits=settings.sources,
            backends=settings.backends(),
            name="textdrop-tray-jobs",
        )
        self.bridge = JobBridge(self.queue, self)
        self.server = InstanceServer(self)
        self.tray = QSystemTrayIcon(tray_icon(), self)
        self.menu = QMenu()
        self.recent: deque[Recent] = deque(maxlen=RECENT)
        self.paused: set[Path] = set()
        self.watcher: WatchService | None = None
        self._ledger: Any = None
        self._watch_lock = FileLock(watch_lock_path())  # one watcher per user, as `textdrop watch`
        self._engine_state = "loading…"
        self._pending: dict[int, str] = {}  # job id → what it is ("capture", "clipboard image", …)
        self._drop_window: Any = None
        self._settings_dialog: Any = None
        self._views: list[Any] = []
        self._capture: Any = None
        self._closed = False
        from textdrop.desktop.capture.hotkey import HotkeyListener
        from textdrop.desktop.notify import Notifier

        self.notifier = Notifier(self.tray)
        self.hotkey = HotkeyListener(self)

    # -- lifecycle -----------------------------------------------------------------------------------

    def start(self) -> bool:
        """Listen on the instance socket, show the tray icon, start the queue (loading the engine in the
        worker), the watcher and the hotkey. False when another tray app already runs."""
        if not self.server.listen():
            return False
        self.server.request.connect(self.handle_request)
        self.bridge.finished.connect(self._finished)
        self.bridge.failed.connect(self._failed)
        self.bridge.started.connect(lambda _id: self.busy_changed.emit(True))
        self.busy_changed.connect(lambda busy: self.tray.setIcon(tray_icon(busy)))
        self.watch_event.connect(self._watched)
        self.engine_state.connect(self._show_engine_state)
        self.hotkey.activated.connect(self.capture)
        self.tray.setToolTip(f"textdrop: loading {self.queue.engine}…")
        self.tray.setContextMenu(self.menu)
        self.menu.aboutToShow.connect(self._build_menu)
        self.tray.activated.connect(self._activated)
        self._build_menu()
        self.tray.show()
        self.queue.start()
        self.queue.loaded.add_done_callback(self._engine_loaded)
        QTimer.singleShot(0, self._start_background)  # the icon first, then the slower parts
        return True

    def _start_background(self) -> None:
        self._apply_hotkey()
        if self._watch_enabled:
            self._restart_watcher()

    def shutdown(self) -> None:
        """Stop the hotkey, the watcher and the queue (the running page may finish), close the socket.
        Idempotent."""
        if self._closed:
            return
        self._closed = True
        self.hotkey.stop()
        self._stop_watcher()
        if self._drop_window is not None:  # a sidecar being written finishes; a stalled download does not
            self._drop_window.wait_for_tasks(SHUTDOWN_TASKS_MS)
        self.queue.stop(grace=self.settings.watch.grace_seconds)
        if self._ledger is not None:
            self._ledger.close()
        if self._watch_lock.is_locked:
            self._watch_lock.release()
        self.server.close()
        self.tray.hide()

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

    def capture(self) -> None:
        """Freeze the screens and let the user drag a region; its text goes to the clipboard."""
        from textdrop.desktop.capture.overlay import CaptureSession

        if self._capture is not None:
            return  # one capture at a time; a second hotkey press while selecting does nothing
        self._capture = CaptureSession(self)
        self._capture.captured.connect(self._captured)
        self._capture.cancelled.connect(self._capture_ended)
        self._capture.failed.connect(self._capture_failed)
        self._capture.start()

    def _capture_failed(self, message: str) -> None:
        self._capture_ended()
        self.notifier.show("textdrop: the screen could not be captured", message, error=True)

    def _captured(self, image: QImage) -> None:
        self._capture_ended()
        options = capture_options(self.settings)
        job_id = self.bridge.submit(png_bytes(image), priority=Priority.INTERACTIVE, options=options)
        self._pending[job_id] = "capture"

    def _capture_ended(self) -> None:
        if self._capture is not None:
            self._capture.deleteLater()
            self._capture = None

    def ocr_clipboard(self) -> None:
        """Recognise the image on the clipboard, if there is one."""
        from textdrop.desktop.clipboard import read_image

        image = read_image()
        if image is None or image.isNull():
            self.notifier.show("textdrop", "There is no image on the clipboard.", error=True)
            return
        self._pending[self.bridge.submit(png_bytes(image), priority=Priority.INTERACTIVE)] = "clipboard image"

    def show_drop_window(self) -> None:
        from textdrop.desktop.drop_window import DropWindow

        if self._drop_window is None:
            self._drop_window = DropWindow(
                self.bridge, template=self.settings.sidecar.template, on_result=self._dropped
            )
        self._drop_window.show()
        self._drop_window.raise_()
        self._drop_window.activateWindow()

    def show_settings(self) -> None:
        from textdrop.desktop.settings_dialog import SettingsDialog

        if self._settings_dialog is None:
            self._settings_dialog = SettingsDialog(self.settings)
            self._settings_dialog.saved.connect(self.apply_settings)
        self._settings_dialog.show()
        self._settings_dialog.raise_()

    def show_result(self, recent: Recent) -> None:
        from textdrop.desktop.result_view import ResultView

        view = ResultView(copy=self._copy)
        view.set_result(recent.result, recent.sidecar)
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
            self._engine_state = "loads at the next job"
            log.info("engine for new jobs: %s", settings.engine)
        self._build_menu()

    # -- results -------------------------------------------------------------------------------------

    def _finished(self, job_id: int, result: OcrResult) -> None:
        self.busy_changed.emit(False)
        what = self._pending.pop(job_id, None)
        if what is None:  # a drop window job: the window reports it through _dropped
            return
        self._deliver(result, None, what)

    def _failed(self, job_id: int, message: str) -> None:
        self.busy_changed.emit(False)
        what = self._pending.pop(job_id, "job")
        self.notifier.show(f"textdrop: the {what} could not be read", message, error=True)

    def _dropped(self, result: OcrResult, source: Path | None) -> None:
        self._deliver(result, source, source.name if source else "dropped image")

    def _deliver(self, result: OcrResult, sidecar: Path | None, what: str) -> None:
        """Clipboard, notification and Recent results for a finished desktop job."""
        text = result.markdown.strip()
        recent = Recent(f"{time.strftime('%H:%M')}  {what}: {_first_line(text)}", result, sidecar)
        self.recent.appendleft(recent)
        if result.warnings:  # text was found that nothing installed reads: never a silent empty result
            self.notifier.show(
                f"textdrop: not all of the {what} could be read", result.warnings[0], error=True
            )
        if not text:
            self.notifier.show("textdrop", f"No text found in the {what}.")
            return
        copied = self.settings.desktop.copy_results and self._copy(text)
        if self.settings.desktop.notify:
            title = "Copied to the clipboard" if copied else f"Read the {what}"
            self.notifier.show(title, _first_line(text), on_click=lambda: self.show_result(recent))

    def _copy(self, text: str) -> bool:
        from textdrop.desktop.clipboard import copy_text

        try:
            handler = copy_text(text)
        except TextdropError as exc:
            self.notifier.show("textdrop: nothing was copied", str(exc), error=True)
            return False
        log.info("copied %d characters with %s", len(text), handler)
        return True

    # -- watcher ---------------------------------------------------------------------------------------

    def _restart_watcher(self) -> None:
        from textdrop.watcher.ledger import Ledger
        from textdrop.watcher.service import WatchService

        self._stop_watcher()
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

    def _stop_watcher(self) -> None:
        if self.watcher is not None:
            self.watcher.stop()
            self.watcher = None

    def _watched(self, event: FileEvent) -> None:
        folder = next((f for f in self.settings.folders if event.path.is_relative_to(f.path)), None)
        if folder is None:
            return
        if event.status == "failed":
            self.notifier.show(f"textdrop: {event.path.name} could not be read", event.message, error=True)
            return
        if event.status not in ("done", "reused"):
            return
        result_text = event.markdown.strip()
        if event.warnings:
            self.notifier.show(
                f"textdrop: not all of {event.path.name} could be read", event.warnings[0], error=True
            )
        if folder.clipboard and result_text:
            self._copy(result_text)
        if folder.notify:
            self.notifier.show(f"Read {event.path.name}", _first_line(result_text) or "(no text)")

    def toggle_pause(self, folder: Path) -> None:
        """Pause or resume watching one folder (until the app quits)."""
        self.paused.symmetric_difference_update({folder})
        self._restart_watcher()

    # -- hotkey, menu, engine --------------------------------------------------------------------------

    def _apply_hotkey(self) -> None:
        self.hotkey.stop()
        usable, why = self.hotkey.available()
        if not usable or not self.hotkey.start(self.settings.desktop.hotkey):
            log.warning("no global hotkey: %s", why or self.hotkey.error)

    def _engine_loaded(self, future: Any) -> None:
        """Called in the worker thread when the default engine loaded (or failed to)."""
        if future.cancelled():
            return
        error = future.exception()
        self.engine_state.emit("ready" if error is None else f"failed: {error}")

    def _show_engine_state(self, state: str) -> None:
        self._engine_state = state
        self.tray.setToolTip(f"textdrop: {self.bridge.engine or self.queue.engine} {state}")
        if state.startswith("failed"):
            self.notifier.show(
                "textdrop: the engine did not load", state.removeprefix("failed: "), error=True
            )

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
        from textdrop.engine.backends.base import engine_class
        from textdrop.engine.catalog import CATALOG
        from textdrop.engine.download import is_downloaded

        menu.clear()
        choices = ["auto", "rapid"]
        for backend in ("llama", "mlx"):
            if engine_class(backend).is_available():
                choices += [f"{backend}:{e.id}" for e in CATALOG if is_downloaded(e, backend)]
        current = self.settings.engine
        for spec in dict.fromkeys([*choices, current]):
            action = self._action(menu, spec, lambda spec=spec: self.set_engine(spec))
            action.setCheckable(True)
            action.setChecked(spec == current)
        menu.addSeparator()
        self._action(menu, "Download models…", self.show_settings)

    def _activated(self, reason: QSystemTrayIcon.ActivationReason) -> None:
        if reason == QSystemTrayIcon.ActivationReason.Trigger:
            self.show_drop_window()

    def _build_menu(self) -> None:
        from textdrop.desktop.capture.hotkey import display_hotkey

        menu = self.menu
        menu.clear()
        try:
            shortcut = display_hotkey(self.settings.desktop.hotkey)
        except ValueError:
            shortcut = self.settings.desktop.hotkey
        # after the menu has closed, or the frozen screens would show it
        self._action(
            menu, f"Capture region\t{shortcut}", lambda: QTimer.singleShot(MENU_CLOSE_MS, self.capture)
        )
        self._action(menu, "Open drop window", self.show_drop_window)
        self._action(menu, "OCR image on clipboard", self.ocr_clipboard)
        recent = menu.addMenu("Recent results")
        recent.setEnabled(bool(self.recent))
        for item in self.recent:
            self._action(recent, item.label, lambda item=item: self.show_result(item))
        folders = menu.addMenu("Watched folders")
        backlog = self.watcher.backlog() if self.watcher is not None else 0
        for folder in self.settings.folders:
            state = "paused" if folder.path in self.paused else "watching"
            self._action(folders, f"{folder.path}  ({state})", lambda p=folder.path: self.toggle_pause(p))
        if not self.settings.folders:
            folders.addAction("No folders yet").setEnabled(False)
        folders.addSeparator()
        folders.addAction(f"Backlog: {backlog} file{'s' if backlog != 1 else ''}").setEnabled(False)
        self._action(folders, "Add or remove folders…", self.show_settings)
        engine = menu.addMenu(f"Engine: {self.settings.engine} ({self._engine_state})")
        engine.aboutToShow.connect(lambda: self._fill_engine_menu(engine))
        menu.addSeparator()
        self._action(menu, "Settings…", self.show_settings)
        self._action(menu, "Quit", self.quit)

    @staticmethod
    def _action(menu: QMenu, text: str, slot: Any) -> QAction:
        action = menu.addAction(text)
        action.triggered.connect(lambda *_checked: slot())  # slot takes no arguments
        return action


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
    tray = TrayApp(app, settings, watch=watch)
    if not tray.start():
        print("textdrop is already running.")
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


def run_capture() -> int:
    """``textdrop capture``: ask the running tray app to capture, or capture in this process.

    Without a tray app: freeze the screens, let the user drag a region while the engine loads in the
    worker, recognise it, put the text on the clipboard (a tool that keeps it after exit), notify, and
    print it. Returns :attr:`ExitCode.OK`, :attr:`ExitCode.INTERRUPTED` when the user pressed Esc, or the
    error's exit code.
    """
    from textdrop.desktop.instance import send_request

    if send_request("capture") is not None:
        return ExitCode.OK
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
        text = result.markdown.strip()
        print(text)
        try:
            if text and settings.desktop.copy_results:
                copy_text(text)
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
