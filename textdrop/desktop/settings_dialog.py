"""The settings dialog: engine and model (with a catalogue to download from), hotkey, watched folders,
sidecar template, clipboard, notifications and start at login.

Saving goes through :func:`textdrop.settings.edit_settings`, so the configuration file keeps its comments
and layout, only the values that changed are written, and nothing is written unless the whole file
validates. :attr:`SettingsDialog.saved` carries the new :class:`~textdrop.settings.Settings`, which the
tray app applies without a restart.

A model download runs :func:`textdrop.engine.models.download.pull` in a thread of its own and reports through
signals; Cancel sets a flag that the progress callback checks, and it raises to abort the transfer.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from pathlib import Path
from typing import Any

import tomlkit
import tomlkit.items
from pydantic import ValidationError
from PySide6.QtCore import QObject, Qt, Signal
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QProgressBar,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from textdrop.desktop.autostart import set_start_at_login
from textdrop.desktop.engines import ENGINE_TITLES, engine_problem, engine_title
from textdrop.desktop.hotkey_edit import HotkeyEdit
from textdrop.desktop.options import DesktopOptions
from textdrop.engine.documents.sidecar import SidecarOptions
from textdrop.engine.errors import ConfigError, TextdropError
from textdrop.engine.models import catalog, download
from textdrop.engine.models.catalog import ModelEntry
from textdrop.engine.registry import RecognizeOptions, engine_class, engine_names, split_spec
from textdrop.settings import Settings, edit_settings, folder_table, load_settings
from textdrop.watcher.service import FolderOptions

log = logging.getLogger(__name__)

ENGINES = ("auto", "rapid", "llama", "mlx", "openai")
"""The engines offered first, in this order; other registered engines follow."""
MODEL_ENGINES = frozenset({"llama", "mlx", "openai"})
"""Engines that take a model (a catalogue id or path; a server's model name for ``openai``)."""
BACKEND_TITLES = {"llama": "llama.cpp (GGUF)", "mlx": "mlx-vlm (Apple Silicon)"}
MODEL_COLUMNS = ("Model", "Parameters", "Size", "Memory", "Licence", "Commercial use", "Score", "Downloaded")
ERROR_COLOR = "#b3261e"
ICON_CHOICES = {"auto": "After the desktop theme", "light": "Light panel", "dark": "Dark panel"}
"""The ``[desktop] tray_icon`` values and how the dialog names them."""
SPEED_AFTER = 0.2
"""Seconds of download before a speed is shown (the first chunks say little)."""
PROGRESS_INTERVAL = 0.1
"""Seconds between progress reports from a download (huggingface_hub reports every chunk)."""


def runnable_backends() -> list[str]:
    """The model backends this machine can run, for the Models tab: llama.cpp everywhere, MLX on Apple
    Silicon only."""
    return [b for b in catalog.BACKENDS if b != "mlx" or catalog.is_apple_silicon()]


# -- validation ---------------------------------------------------------------------------------------------


def check_hotkey(text: str) -> tuple[str, str | None]:
    """``text`` checked by :func:`textdrop.desktop.capture.hotkey.parse_hotkey`.

    Returns:
        The hotkey in canonical form (``text`` itself when the parser is not there) and ``None``, or
        ``text`` and an error message for the user.
    """
    try:
        from textdrop.desktop.capture.hotkey import parse_hotkey
    except ImportError as exc:  # the capture module is optional here: skip the check
        log.debug("hotkey not validated: %s", exc)
        return text, None
    try:
        canonical = parse_hotkey(text)
    except Exception as exc:  # whatever it raises, its message is for the user
        return text, f"Capture hotkey: {exc}"
    return (canonical if isinstance(canonical, str) and canonical else text), None


def check_template(template: str) -> str | None:
    """An error message when ``template`` is not a valid sidecar name template."""
    try:
        SidecarOptions(template=template)
    except ValidationError as exc:
        message = exc.errors()[0]["msg"]
        return message.removeprefix("Value error, ")
    return None


def _set(document: tomlkit.TOMLDocument, table: str | None, key: str, value: Any) -> None:
    """Set ``key`` in ``[table]`` (the top level for ``None``), creating the table when it is missing."""
    if table is None:
        document[key] = value
        return
    if table not in document:
        document[table] = tomlkit.table()
    document[table][key] = value  # type: ignore[index]


def _update_folders(document: tomlkit.TOMLDocument, folders: list[FolderOptions]) -> None:
    """Make ``[[folders]]`` list ``folders``: edit the tables of folders that stay (keeping their other keys
    and comments), remove the others, append new ones."""
    tables = document.get("folders")
    if tables is not None and not isinstance(tables, tomlkit.items.AoT):  # an inline array: rewrite it
        tables = tomlkit.aot()
        tables.extend(folder_table(FolderOptions.model_validate(dict(t))) for t in document["folders"])
        document["folders"] = tables
    if not folders:
        if tables is not None:
            del document["folders"]
        return
    if tables is None:
        document["folders"] = tables = tomlkit.aot()

    def path_of(table: Any) -> Path:
        return FolderOptions(path=Path(str(table["path"]))).path

    wanted = {folder.path: folder for folder in folders}
    for index in reversed(range(len(tables))):
        if path_of(tables[index]) not in wanted:
            del tables[index]
    present = {path_of(table): table for table in tables}
    for folder in folders:
        table = present.get(folder.path)
        if table is None:
            tables.append(folder_table(folder))
            continue
        for key in ("clipboard", "notify"):
            value = getattr(folder, key)
            if value != FolderOptions.model_fields[key].default:
                table[key] = value
            elif key in table:
                del table[key]


# -- workers --------------------------------------------------------------------------------------------


class DownloadCancelled(Exception):
    """Raised from the progress callback to abort a download the user cancelled."""


class _Relay(QObject):
    """Signals a worker thread emits; they reach the dialog on the GUI thread (queued)."""

    progress = Signal(str, object, object)  # entry id, done bytes, total bytes (may exceed 2**31)
    downloaded = Signal(str)  # entry id
    failed = Signal(str, str)  # entry id, message
    cancelled = Signal(str)  # entry id
    warning = Signal(str, str, str)  # entry id, backend, memory warning ("" for none)


# -- the dialog -----------------------------------------------------------------------------------------


class SettingsDialog(QDialog):
    """Edits config.toml's settings that the tray app uses; Save validates and writes them.

    Args:
        settings: the settings to show (``None``: read the configuration file).
        parent: the parent widget.
        path: the configuration file (``None``: :func:`textdrop.settings.config_path`).

    Signals:
        saved(object): the new :class:`~textdrop.settings.Settings`, after they were written.
        download_finished(str): a catalogue model finished downloading (its id).
    """

    saved = Signal(object)
    download_finished = Signal(str)

    def __init__(
        self, settings: Settings | None = None, parent: QWidget | None = None, *, path: Path | None = None
    ) -> None:
        super().__init__(parent)
        self.setWindowTitle("textdrop settings")
        self._path = path
        self._load_error: str | None = None
        if settings is None:
            try:
                settings = load_settings(path)
            except ConfigError as exc:
                self._load_error = str(exc)
                settings = Settings()
        self._settings = settings
        self._folders: list[FolderOptions] = []
        self._abort: threading.Event | None = None
        self._downloading: str | None = None
        self._relay = _Relay(self)
        self._relay.progress.connect(self._download_progress)
        self._relay.downloaded.connect(self._download_done)
        self._relay.failed.connect(self._download_failed)
        self._relay.cancelled.connect(self._download_cancelled)
        self._relay.warning.connect(self._show_warning)

        self.tabs = QTabWidget()
        self.tabs.addTab(self._general_tab(), "General")
        self.tabs.addTab(self._models_tab(), "Models")
        self.tabs.addTab(self._folders_tab(), "Folders")
        self.engine_combo.currentIndexChanged.connect(lambda _index: self._engine_changed(self.engine_name()))
        self.error_label = QLabel("")
        self.error_label.setWordWrap(True)
        self.error_label.setStyleSheet(f"color: {ERROR_COLOR};")
        self.error_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.error_label.hide()
        self.buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Save | QDialogButtonBox.StandardButton.Cancel
        )
        self.save_button = self.buttons.button(QDialogButtonBox.StandardButton.Save)
        self.buttons.accepted.connect(self.save)
        self.buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(self.tabs, 1)
        layout.addWidget(self.error_label)
        layout.addWidget(self.buttons)
        self.resize(760, 520)
        self.set_settings(settings)
        if self._load_error:
            self.show_error(self._load_error)

    # -- building --------------------------------------------------------------------------------------

    def _general_tab(self) -> QWidget:
        tab = QWidget()
        form = QFormLayout(tab)
        form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        self.engine_combo = QComboBox()
        names = list(ENGINES) + [name for name in engine_names() if name not in ENGINES]
        for name in names:
            self.engine_combo.addItem(ENGINE_TITLES.get(name, name), name)
        self.model_edit = QLineEdit()
        self.model_edit.setPlaceholderText("a catalogue id (see Models), a local path, or a server's model")
        self.hotkey_edit = HotkeyEdit()
        self.template_edit = QLineEdit()
        self.template_edit.setPlaceholderText("{name}.{ext}")
        self.template_edit.setToolTip(SidecarOptions.model_fields["template"].description)
        self.languages_edit = QLineEdit()
        self.languages_edit.setPlaceholderText(
            "e.g. ru, en (empty: Chinese, Japanese, English, Latin scripts)"
        )
        self.languages_edit.setToolTip(RecognizeOptions.model_fields["languages"].description)
        self.copy_check = QCheckBox("Copy the text of a capture or a drop to the clipboard")
        self.markdown_check = QCheckBox("Paste as Markdown (headings, lists, tables as pipes) in plain text")
        self.markdown_check.setToolTip(DesktopOptions.model_fields["copy_markdown"].description)
        self.notify_check = QCheckBox("Show a notification when a capture or a drop is read")
        self.login_check = QCheckBox("Start textdrop when I log in")
        self.icon_combo = QComboBox()
        for value, label in ICON_CHOICES.items():
            self.icon_combo.addItem(label, value)
        form.addRow("Engine:", self.engine_combo)
        form.addRow("Model:", self.model_edit)
        form.addRow("", _note("auto picks a downloaded model on a fast backend, else the embedded engine."))
        form.addRow("Capture hotkey:", self.hotkey_edit)
        form.addRow("", _note("Click the field and press the keys (Backspace clears it)."))
        form.addRow("Sidecar name:", self.template_edit)
        form.addRow("", _note("{name} = scan.jpg, {stem} = scan, {ext} = md; e.g. {stem}.ocr.{ext}"))
        form.addRow("Languages:", self.languages_edit)
        form.addRow(
            "", _note("Other scripts need their language pack: textdrop models pull eslav (see Models).")
        )
        form.addRow("", self.copy_check)
        form.addRow("", self.markdown_check)
        form.addRow("", self.notify_check)
        form.addRow("", self.login_check)
        form.addRow("Tray icon for a:", self.icon_combo)
        return tab

    def _models_tab(self) -> QWidget:
        tab = QWidget()
        self.backend_combo = QComboBox()
        for backend in runnable_backends():
            self.backend_combo.addItem(BACKEND_TITLES[backend], backend)
        self.backend_combo.setCurrentIndex(self.backend_combo.findData(catalog.default_backend()))
        self.backend_combo.currentIndexChanged.connect(lambda _index: self.refresh_catalog())
        self.model_table = QTableWidget(0, len(MODEL_COLUMNS))
        self.model_table.setHorizontalHeaderLabels(list(MODEL_COLUMNS))
        self.model_table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.model_table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.model_table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.model_table.verticalHeader().hide()
        self.model_table.setWordWrap(False)
        self.model_table.setTextElideMode(Qt.TextElideMode.ElideRight)
        self.model_table.verticalHeader().setDefaultSectionSize(self.fontMetrics().height() + 10)
        header = self.model_table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(MODEL_COLUMNS.index("Licence"), QHeaderView.ResizeMode.Stretch)
        self.model_table.itemSelectionChanged.connect(self._selection_changed)
        self.model_table.itemDoubleClicked.connect(lambda _item: self.use_selected_model())
        self.use_button = QPushButton("Use this model")
        self.use_button.clicked.connect(self.use_selected_model)
        self.download_button = QPushButton("Download")
        self.download_button.clicked.connect(self.start_download)
        self.cancel_download_button = QPushButton("Cancel")
        self.cancel_download_button.clicked.connect(self.cancel_download)
        self.cancel_download_button.setEnabled(False)
        self.download_progress = QProgressBar()
        self.download_progress.setRange(0, 100)
        self.download_progress.setValue(0)
        self.download_status = QLabel("")
        self.download_status.setWordWrap(True)
        self.warning_label = QLabel("")
        self.warning_label.setWordWrap(True)
        self.warning_label.setStyleSheet("color: #8a5300;")
        self.warning_label.hide()

        top = QHBoxLayout()
        top.addWidget(QLabel("Backend:"))
        top.addWidget(self.backend_combo)
        top.addStretch(1)
        actions = QHBoxLayout()
        actions.addWidget(self.use_button)
        actions.addWidget(self.download_button)
        actions.addWidget(self.download_progress, 1)
        actions.addWidget(self.cancel_download_button)
        layout = QVBoxLayout(tab)
        layout.addLayout(top)
        layout.addWidget(self.model_table, 1)
        layout.addWidget(self.warning_label)
        layout.addLayout(actions)
        layout.addWidget(self.download_status)
        return tab

    def _folders_tab(self) -> QWidget:
        tab = QWidget()
        self.folder_table = QTableWidget(0, 3)
        self.folder_table.setHorizontalHeaderLabels(["Folder", "Copy to clipboard", "Notify"])
        self.folder_table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.folder_table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.folder_table.verticalHeader().hide()
        header = self.folder_table.horizontalHeader()
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        header.setSectionResizeMode(1, QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(2, QHeaderView.ResizeMode.ResizeToContents)
        self.add_folder_button = QPushButton("Add…")
        self.add_folder_button.clicked.connect(lambda: self.add_folder())
        self.remove_folder_button = QPushButton("Remove")
        self.remove_folder_button.clicked.connect(self.remove_selected_folders)
        buttons = QHBoxLayout()
        buttons.addWidget(self.add_folder_button)
        buttons.addWidget(self.remove_folder_button)
        buttons.addStretch(1)
        layout = QVBoxLayout(tab)
        layout.addWidget(
            _note(
                "Every new image or PDF in these folders gets a Markdown sidecar. Copy to clipboard and "
                "Notify suit a screenshot folder.",
                wrap=True,
            )
        )
        layout.addWidget(self.folder_table, 1)
        layout.addLayout(buttons)
        return tab

    # -- showing settings ------------------------------------------------------------------------------

    @property
    def settings(self) -> Settings:
        """The settings the dialog was opened with, or last saved."""
        return self._settings

    def set_settings(self, settings: Settings) -> None:
        """Show ``settings`` in every field (discarding unsaved edits)."""
        self._settings = settings
        self._confirmed_engine: str | None = None
        self.save_button.setText("Save")
        name, model = split_spec(settings.engine)
        self.set_engine_name(name)
        self.model_edit.setText(model or "")
        self._engine_changed(name)
        self.hotkey_edit.set_hotkey(settings.desktop.hotkey)
        self.template_edit.setText(settings.sidecar.template)
        self.languages_edit.setText(", ".join(settings.recognize.languages))
        self.copy_check.setChecked(settings.desktop.copy_results)
        self.markdown_check.setChecked(settings.desktop.copy_markdown)
        self.icon_combo.setCurrentIndex(self.icon_combo.findData(settings.desktop.tray_icon))
        self.notify_check.setChecked(settings.desktop.notify)
        self.login_check.setChecked(settings.desktop.start_at_login)
        self._folders = list(settings.folders)
        self._fill_folders()
        self.show_error("")

    def reload(self) -> None:
        """Show the settings as config.toml has them now (discarding unsaved edits); a file that cannot be
        read leaves the fields as they were and says why."""
        try:
            settings = load_settings(self._path)
        except ConfigError as exc:
            self.set_settings(self._settings)
            self.show_error(str(exc))
            return
        self.set_settings(settings)

    def show_tab(self, title: str) -> None:
        """Show the tab titled ``title`` (``General``, ``Models``, ``Folders``).

        Raises:
            ValueError: no tab has that title.
        """
        for index in range(self.tabs.count()):
            if self.tabs.tabText(index) == title:
                self.tabs.setCurrentIndex(index)
                return
        raise ValueError(f"no settings tab {title!r}")

    def _offer_fix(self, engine: str) -> None:
        """For a catalogue model that is not downloaded: show it on the Models tab, ready to download."""
        name, model = split_spec(engine)
        if model is None or name not in runnable_backends() or not engine_class(name).is_available():
            return  # a missing runtime: the message carries its install hint
        self.backend_combo.setCurrentIndex(self.backend_combo.findData(name))
        if self.select_entry(model):
            self.show_tab("Models")
            self.download_status.setText(f"Download {model} here (Download), then Save.")

    def show_error(self, message: str) -> None:
        """Show ``message`` above the buttons (``""`` hides it)."""
        self.error_label.setText(message)
        self.error_label.setVisible(bool(message))

    def engine_name(self) -> str:
        """The engine chosen (its registered name, e.g. ``rapid``)."""
        return str(self.engine_combo.currentData())

    def set_engine_name(self, name: str) -> None:
        """Choose engine ``name`` (added to the list when it is not registered here)."""
        if self.engine_combo.findData(name) < 0:
            self.engine_combo.addItem(ENGINE_TITLES.get(name, name), name)
        self.engine_combo.setCurrentIndex(self.engine_combo.findData(name))

    def _engine_changed(self, name: str) -> None:
        self.model_edit.setEnabled(name in MODEL_ENGINES)
        if name in runnable_backends():
            self.backend_combo.setCurrentIndex(self.backend_combo.findData(name))
        self.refresh_catalog()

    # -- saving ----------------------------------------------------------------------------------------

    def engine_spec(self) -> str:
        """The engine spec the fields make: ``name`` or ``name:model``."""
        name = self.engine_name()
        model = self.model_edit.text().strip()
        return f"{name}:{model}" if model and name in MODEL_ENGINES else name

    def folders(self) -> list[FolderOptions]:
        """The watched folders as the Folders tab shows them (checkbox states included)."""
        folders = []
        for row, folder in enumerate(self._folders):
            clipboard = self._check(row, 1).isChecked()
            notify = self._check(row, 2).isChecked()
            folders.append(folder.model_copy(update={"clipboard": clipboard, "notify": notify}))
        return folders

    def save(self) -> Settings | None:
        """Validate the fields and write the changes; emits :attr:`saved` and closes on success.

        Returns:
            The new settings, or ``None`` when something is invalid (the error is shown, nothing written).
        """
        old = self._settings
        hotkey, hotkey_problem = check_hotkey(self.hotkey_edit.text().strip())
        if not hotkey:
            hotkey_problem = "Give a capture hotkey: click the field and press the keys."
        template = self.template_edit.text().strip()
        languages = tuple(self.languages_edit.text().replace(",", " ").split())
        try:
            catalog.packs_for(languages)
            language_problem = ""
        except TextdropError as exc:
            language_problem = str(exc)
        problems = [p for p in (hotkey_problem, check_template(template), language_problem) if p]
        if problems:
            self.show_error(" ".join(problems))
            return None
        engine = self.engine_spec()
        if engine != old.engine and engine != self._confirmed_engine:
            problem = engine_problem(engine)
            if problem is not None:  # say so, offer the fix; a second Save saves it anyway
                self._confirmed_engine = engine
                self._offer_fix(engine)
                self.show_error(
                    f"{engine_title(engine)} cannot run yet: {problem} Save again to keep it anyway."
                )
                self.save_button.setText("Save anyway")
                return None
        folders = self.folders()
        desktop = {
            "hotkey": hotkey,
            "copy_results": self.copy_check.isChecked(),
            "copy_markdown": self.markdown_check.isChecked(),
            "notify": self.notify_check.isChecked(),
            "start_at_login": self.login_check.isChecked(),
            "tray_icon": self.icon_combo.currentData(),
        }
        shown = {**old.desktop.model_dump(), "hotkey": check_hotkey(old.desktop.hotkey)[0]}

        def change(document: tomlkit.TOMLDocument) -> None:
            if engine != old.engine:
                _set(document, None, "engine", engine)
            if template != old.sidecar.template:
                _set(document, "sidecar", "template", template)
            if languages != old.recognize.languages:
                _set(document, "recognize", "languages", list(languages))
            for key, value in desktop.items():
                if value != shown[key]:
                    _set(document, "desktop", key, value)
            if folders != old.folders:
                _update_folders(document, folders)

        login_changed = desktop["start_at_login"] != old.desktop.start_at_login
        try:
            if login_changed:
                set_start_at_login(bool(desktop["start_at_login"]))
            settings = edit_settings(change, self._path)
        except (TextdropError, OSError) as exc:
            if login_changed:  # put the autostart entry back as it was
                try:
                    set_start_at_login(old.desktop.start_at_login)
                except OSError:
                    log.exception("could not restore the autostart entry")
            self.show_error(str(exc) if isinstance(exc, TextdropError) else f"Could not save: {exc}")
            return None
        log.info("settings saved")
        self._settings = settings
        self.show_error("")
        self.saved.emit(settings)
        self.accept()
        return settings

    def reject(self) -> None:
        """Close without saving; the fields show the saved settings again next time."""
        self.set_settings(self._settings)
        super().reject()

    # -- folders ---------------------------------------------------------------------------------------

    def _check(self, row: int, column: int) -> QCheckBox:
        widget = self.folder_table.cellWidget(row, column)
        box = widget.findChild(QCheckBox)
        assert box is not None
        return box

    def _fill_folders(self) -> None:
        self.folder_table.setRowCount(0)
        for folder in self._folders:
            self._append_folder_row(folder)

    def _append_folder_row(self, folder: FolderOptions) -> None:
        row = self.folder_table.rowCount()
        self.folder_table.insertRow(row)
        item = QTableWidgetItem(str(folder.path))
        item.setToolTip(str(folder.path))
        self.folder_table.setItem(row, 0, item)
        for column, checked in ((1, folder.clipboard), (2, folder.notify)):
            box = QCheckBox()
            box.setChecked(checked)
            cell = QWidget()
            cell_layout = QHBoxLayout(cell)
            cell_layout.setContentsMargins(0, 0, 0, 0)
            cell_layout.setAlignment(Qt.AlignmentFlag.AlignCenter)
            cell_layout.addWidget(box)
            self.folder_table.setCellWidget(row, column, cell)

    def add_folder(self, path: Path | None = None) -> FolderOptions | None:
        """Add a watched folder (``None``: ask with a folder dialog); returns it, or ``None`` if not added."""
        if path is None:
            chosen = QFileDialog.getExistingDirectory(self, "Watch a folder", str(Path.home()))
            if not chosen:
                return None
            path = Path(chosen)
        try:
            folder = FolderOptions(path=path)
        except ValidationError as exc:
            self.show_error(f"Cannot watch {path}: {exc.errors()[0]['msg']}")
            return None
        if any(existing.path == folder.path for existing in self._folders):
            self.show_error(f"{folder.path} is already watched.")
            return None
        self._folders.append(folder)
        self._append_folder_row(folder)
        self.show_error("")
        return folder

    def remove_selected_folders(self) -> None:
        """Remove the selected folders from the list (saved with Save)."""
        rows = sorted(
            {index.row() for index in self.folder_table.selectionModel().selectedRows()}, reverse=True
        )
        current = self.folders()  # keep the checkbox states of the others
        for row in rows:
            del current[row]
            self.folder_table.removeRow(row)
        self._folders = current

    # -- the model catalogue ---------------------------------------------------------------------------

    def backend(self) -> str:
        """The backend the catalogue shows: ``llama`` or ``mlx``."""
        return str(self.backend_combo.currentData())

    def entries(self) -> list[ModelEntry]:
        """The catalogue entries with a build for :meth:`backend`, in table order."""
        backend = self.backend()
        return [entry for entry in catalog.CATALOG if entry.files_for(backend) is not None]

    def selected_entry(self) -> ModelEntry | None:
        """The catalogue entry selected in the table, or ``None``."""
        rows = self.model_table.selectionModel().selectedRows()
        entries = self.entries()
        return entries[rows[0].row()] if rows and rows[0].row() < len(entries) else None

    def select_entry(self, model_id: str) -> bool:
        """Select the entry ``model_id`` in the table; False when the backend has no build of it."""
        for row, entry in enumerate(self.entries()):
            if entry.id == model_id:
                self.model_table.selectRow(row)
                return True
        return False

    def refresh_catalog(self) -> None:
        """Fill the table for the chosen backend (sizes, licences, what is downloaded)."""
        selected = self.selected_entry()
        backend = self.backend()
        entries = self.entries()
        self.model_table.setRowCount(len(entries))
        for row, entry in enumerate(entries):
            files = entry.files_for(backend)
            assert files is not None
            title = entry.title
            slots = [kind for kind in catalog.KINDS if f"{backend}:{kind}" in entry.defaults]
            if slots:
                title += f"  ({', '.join(slots)} default)"
            try:
                downloaded = download.is_downloaded(entry, backend)
            except Exception as exc:  # a damaged cache must not break the dialog
                log.warning("cannot tell whether %s is downloaded: %s", entry.id, exc)
                downloaded = False
            cells = {
                "Model": title,
                "Parameters": entry.params,
                "Size": download.format_bytes(files.size_bytes),
                "Memory": download.format_bytes(files.memory_need),
                "Licence": entry.licence_name,
                "Commercial use": "yes" if entry.commercial_use else "no",
                "Score": " · ".join(score.label for score in entry.scores) or "-",
                "Downloaded": "yes" if downloaded else "no",
            }
            tips = {
                "Model": f"{entry.id}: {entry.notes}" if entry.notes else "",
                "Memory": "estimated from the download size" if files.memory_bytes is None else "measured",
                "Licence": entry.licence_source,
                "Score": "\n".join(f"{score.label}: {score.source}" for score in entry.scores),
            }
            for column, (name, text) in enumerate(cells.items()):
                item = QTableWidgetItem(text)
                item.setToolTip(tips.get(name) or text)
                if name in ("Parameters", "Size", "Memory"):
                    item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
                elif name in ("Commercial use", "Downloaded"):
                    item.setTextAlignment(Qt.AlignmentFlag.AlignCenter)
                self.model_table.setItem(row, column, item)
        if selected is not None:
            self.select_entry(selected.id)
        self._update_download_buttons()

    def use_selected_model(self) -> None:
        """Make the selected entry the engine's model (engine = the catalogue's backend)."""
        entry = self.selected_entry()
        if entry is None:
            return
        self.set_engine_name(self.backend())
        self.model_edit.setText(entry.id)
        self.tabs.setCurrentIndex(0)

    def _selection_changed(self) -> None:
        self._update_download_buttons()
        entry = self.selected_entry()
        self.warning_label.hide()
        if entry is None:
            return
        backend, relay = self.backend(), self._relay

        def check() -> None:  # nvidia-smi may take seconds: never on the GUI thread
            try:
                text = download.memory_warning(entry, backend) or ""
            except Exception:
                log.exception("memory check failed")
                text = ""
            with contextlib.suppress(RuntimeError):  # the dialog is gone
                relay.warning.emit(entry.id, backend, text)

        threading.Thread(target=check, name="textdrop-memory-check", daemon=True).start()

    def _show_warning(self, model_id: str, backend: str, text: str) -> None:
        entry = self.selected_entry()
        if entry is None or entry.id != model_id or backend != self.backend():
            return
        self.warning_label.setText(text)
        self.warning_label.setVisible(bool(text))

    def _update_download_buttons(self) -> None:
        busy = self._downloading is not None
        entry = self.selected_entry()
        self.download_button.setEnabled(not busy and entry is not None)
        self.use_button.setEnabled(entry is not None)
        self.cancel_download_button.setEnabled(busy)
        self.backend_combo.setEnabled(not busy)

    # -- downloading -----------------------------------------------------------------------------------

    @property
    def downloading(self) -> str | None:
        """The id of the model being downloaded, or ``None``."""
        return self._downloading

    def start_download(self) -> bool:
        """Download the selected entry for the chosen backend in a worker thread; False when none is
        selected or a download already runs."""
        entry = self.selected_entry()
        if entry is None or self._downloading is not None:
            return False
        backend, relay = self.backend(), self._relay
        abort = self._abort = threading.Event()
        self._downloading = entry.id
        self._download_start: tuple[float, int] | None = None  # monotonic time and bytes at the first report
        last = [0.0, -1]  # time and percent of the last report

        def progress(done: int, total: int) -> None:
            if abort.is_set():
                raise DownloadCancelled(entry.id)
            percent = done * 100 // total if total else 0
            now = time.monotonic()
            if percent == last[1] and now - last[0] < PROGRESS_INTERVAL and done < total:
                return
            last[:] = [now, percent]
            relay.progress.emit(entry.id, done, total)

        def run() -> None:
            try:
                download.pull(entry, backend, progress=progress)
            except Exception as exc:
                if abort.is_set():  # the cancel, possibly wrapped by huggingface_hub
                    outcome: tuple[Any, ...] = (relay.cancelled, entry.id)
                elif isinstance(exc, TextdropError):
                    outcome = (relay.failed, entry.id, str(exc))
                else:
                    log.exception("downloading %s failed", entry.id)
                    outcome = (relay.failed, entry.id, f"Downloading {entry.id} failed: {exc!r}")
            else:
                outcome = (relay.downloaded, entry.id)
            try:
                outcome[0].emit(*outcome[1:])
            except RuntimeError:  # the dialog is gone
                log.debug("settings dialog gone; download outcome dropped")

        self.download_progress.setValue(0)
        self.download_status.setStyleSheet("")
        self.download_status.setText(f"Downloading {entry.title}…")
        self._update_download_buttons()
        threading.Thread(target=run, name=f"textdrop-download-{entry.id}", daemon=True).start()
        return True

    def cancel_download(self) -> None:
        """Ask the running download to stop (at its next chunk)."""
        if self._abort is not None and self._downloading is not None:
            self._abort.set()
            self.download_status.setText("Cancelling…")
            self.cancel_download_button.setEnabled(False)

    def _download_progress(self, model_id: str, done: int, total: int) -> None:
        if model_id != self._downloading:
            return
        self.download_progress.setValue(int(done * 100 // total) if total else 0)
        now = time.monotonic()
        if self._download_start is None:  # the first report: bytes already in the cache count as done
            self._download_start = (now, done)
        started, first = self._download_start
        text = f"Downloading {model_id}: {download.format_bytes(done)} of {download.format_bytes(total)}"
        if now - started >= SPEED_AFTER and done > first:
            speed = (done - first) / (now - started)  # bytes per second since the first report
            text += f" · {download.format_bytes(int(speed))}/s"
            if total > done:
                text += f" · about {_duration((total - done) / speed)} left"
        self.download_status.setText(text)

    def _download_finished(self, model_id: str) -> None:
        self._downloading = None
        self._abort = None
        self.refresh_catalog()

    def _download_done(self, model_id: str) -> None:
        self.download_progress.setValue(100)
        self._download_finished(model_id)
        self.download_status.setText(f"Downloaded {model_id}. Choose Use this model, then Save, to use it.")
        self.download_finished.emit(model_id)

    def _download_failed(self, model_id: str, message: str) -> None:
        self._download_finished(model_id)
        self.download_status.setStyleSheet(f"color: {ERROR_COLOR};")
        self.download_status.setText(message)

    def _download_cancelled(self, model_id: str) -> None:
        self.download_progress.setValue(0)
        self._download_finished(model_id)
        self.download_status.setText(f"Download of {model_id} cancelled; files already complete are kept.")


def _duration(seconds: float) -> str:
    """``seconds`` for a person: ``40 s``, ``3 min``, ``1 h 20 min``."""
    if seconds < 60:
        return f"{max(1, round(seconds))} s"
    minutes = round(seconds / 60)
    return f"{minutes} min" if minutes < 60 else f"{minutes // 60} h {minutes % 60} min"


def _note(text: str, *, wrap: bool = False) -> QLabel:
    label = QLabel(text)
    label.setWordWrap(wrap)
    label.setStyleSheet("color: palette(placeholder-text);")
    font = label.font()
    font.setPointSizeF(font.pointSizeF() * 0.9)
    label.setFont(font)
    return label
