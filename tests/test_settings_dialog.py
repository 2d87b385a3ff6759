"""The settings dialog, on the Xvfb display: saving through edit_settings, validation, model downloads and
start at login."""

from __future__ import annotations

import re
import sys
import threading
import time
import types
from pathlib import Path

import pytest
from PySide6.QtCore import Qt, QTimer
from PySide6.QtWidgets import QDialog, QFileDialog

from tests.conftest import write_config
from tests.helpers.display import screenshots_dir
from textdrop.desktop import autostart, settings_dialog
from textdrop.desktop.autostart import autostart_path, set_start_at_login
from textdrop.desktop.settings_dialog import MODEL_COLUMNS, DownloadCancelled, SettingsDialog
from textdrop.engine.models import download
from textdrop.settings import config_path, load_settings

pytestmark = pytest.mark.gui

CONFIG = """\
# textdrop settings, edited by hand
engine = "auto"  # the best one here

[desktop]
# the tray app
notify = true

[[folders]]
# the scanner drops files here
path = "{scans}"
settle_seconds = 7

[[folders]]
path = "{shots}"
"""


@pytest.fixture
def folders(tmp_path: Path) -> tuple[Path, Path]:
    scans, shots = tmp_path / "Scans", tmp_path / "Screenshots"
    scans.mkdir()
    shots.mkdir()
    return scans, shots


@pytest.fixture
def configured(textdrop_home: Path, folders: tuple[Path, Path]) -> Path:
    """A hand-written config.toml with comments and two watched folders."""
    scans, shots = folders
    return write_config(textdrop_home, CONFIG.format(scans=scans, shots=shots))


@pytest.fixture
def xdg(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private XDG_CONFIG_HOME, so start at login never touches the real autostart folder."""
    folder = tmp_path / "xdg-config"
    monkeypatch.setenv("XDG_CONFIG_HOME", str(folder))
    return folder


@pytest.fixture
def dialog(qtbot, xdg: Path) -> SettingsDialog:
    dialog = SettingsDialog()
    qtbot.addWidget(dialog)
    dialog.show()
    qtbot.waitExposed(dialog)
    return dialog


@pytest.fixture
def no_real_hotkey_parser(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """A stand-in for ``textdrop.desktop.capture.hotkey``: accepts hotkeys with a ``+``, records them."""
    seen: list[str] = []

    def parse_hotkey(text: str) -> object:
        seen.append(text)
        if "+" not in text:
            raise ValueError("use keys joined by '+', such as <ctrl>+<alt>+t")
        return text

    module = types.ModuleType("textdrop.desktop.capture.hotkey")
    module.parse_hotkey = parse_hotkey  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "textdrop.desktop.capture.hotkey", module)
    return seen


def test_save_writes_the_changes_and_keeps_comments(
    configured: Path,
    folders: tuple[Path, Path],
    dialog: SettingsDialog,
    qtbot,
    no_real_hotkey_parser,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(settings_dialog, "engine_problem", lambda spec: None)  # as if downloaded
    scans, shots = folders
    assert dialog.engine_name() == "auto" and not dialog.model_edit.isEnabled()
    assert dialog.folder_table.rowCount() == 2
    assert dialog.notify_check.isChecked()

    dialog.set_engine_name("llama")
    assert dialog.model_edit.isEnabled() and dialog.backend() == "llama"
    dialog.model_edit.setText("granite-docling-258m")
    dialog.hotkey_edit.setText("<ctrl>+<shift>+o")
    dialog.template_edit.setText("{stem}.ocr.{ext}")
    dialog.languages_edit.setText("ru, en")
    dialog.copy_check.setChecked(False)
    dialog._check(1, 1).setChecked(True)  # Screenshots: copy to clipboard
    dialog._check(1, 2).setChecked(True)  # Screenshots: notify
    inbox = scans.parent / "Inbox"
    inbox.mkdir()
    assert dialog.add_folder(inbox) is not None
    assert dialog.add_folder(scans) is None and "already watched" in dialog.error_label.text()

    with qtbot.waitSignal(dialog.saved) as signal:
        qtbot.mouseClick(dialog.save_button, Qt.MouseButton.LeftButton)
    assert dialog.result() == QDialog.DialogCode.Accepted
    assert no_real_hotkey_parser[0] == "<ctrl>+<shift>+o"  # then the saved one, to compare

    settings = load_settings()
    assert signal.args[0] == settings
    assert settings.engine == "llama:granite-docling-258m"
    assert settings.desktop.hotkey == "<ctrl>+<shift>+o"
    assert settings.desktop.copy_results is False
    assert settings.desktop.notify is True
    assert settings.sidecar.template == "{stem}.ocr.{ext}"
    assert settings.recognize.languages == ("ru", "en")
    assert [folder.path for folder in settings.folders] == [scans, shots, inbox]
    assert settings.folders[0].settle_seconds == 7  # the keys the dialog does not show are kept
    assert (settings.folders[0].clipboard, settings.folders[0].notify) == (False, False)
    assert (settings.folders[1].clipboard, settings.folders[1].notify) == (True, True)

    text = configured.read_text(encoding="utf-8")
    for comment in ("# textdrop settings, edited by hand", "# the best one here", "# the tray app"):
        assert comment in text
    assert "# the scanner drops files here" in text
    assert "start_at_login" not in text  # unchanged values are not written
    assert dialog.settings == settings


def test_removing_a_folder_and_unticking_its_options(
    configured: Path, folders: tuple[Path, Path], qtbot, xdg: Path
) -> None:
    scans, shots = folders
    configured.write_text(
        configured.read_text(encoding="utf-8") + "clipboard = true\nnotify = true\n", encoding="utf-8"
    )
    dialog = SettingsDialog()
    qtbot.addWidget(dialog)
    assert dialog._check(1, 1).isChecked() and dialog._check(1, 2).isChecked()
    dialog._check(1, 2).setChecked(False)
    dialog.folder_table.selectRow(0)
    qtbot.mouseClick(dialog.remove_folder_button, Qt.MouseButton.LeftButton)
    assert dialog.folder_table.rowCount() == 1
    assert dialog.save() is not None

    settings = load_settings()
    assert [(f.path, f.clipboard, f.notify) for f in settings.folders] == [(shots, True, False)]
    text = configured.read_text(encoding="utf-8")
    assert "notify = true\n" in text.split("[[folders]]")[0]  # the [desktop] one stays
    assert str(scans) + '"' not in text
    assert "# textdrop settings, edited by hand" in text


def test_add_folder_button_uses_the_folder_dialog(dialog: SettingsDialog, qtbot, tmp_path: Path, monkeypatch):
    chosen = tmp_path / "Chosen"
    chosen.mkdir()
    monkeypatch.setattr(QFileDialog, "getExistingDirectory", lambda *args, **kwargs: str(chosen))
    qtbot.mouseClick(dialog.add_folder_button, Qt.MouseButton.LeftButton)
    assert [folder.path for folder in dialog.folders()] == [chosen]
    assert dialog.folder_table.item(0, 0).text() == str(chosen)


def test_invalid_template_shows_an_error_and_saves_nothing(
    configured: Path, dialog: SettingsDialog, qtbot
) -> None:
    before = configured.read_text(encoding="utf-8")
    dialog.template_edit.setText("{stem}.md")
    dialog.languages_edit.setText("ru, tlh")
    dialog.copy_check.setChecked(False)
    with qtbot.assertNotEmitted(dialog.saved):
        qtbot.mouseClick(dialog.save_button, Qt.MouseButton.LeftButton)
    assert dialog.isVisible()
    assert dialog.error_label.isVisible() and "{ext}" in dialog.error_label.text()
    assert "No recogniser reads the language 'tlh'" in dialog.error_label.text()
    assert configured.read_text(encoding="utf-8") == before
    dialog.languages_edit.setText("ru")

    dialog.template_edit.setText("{stem}.ocr.{ext}")  # fixed: saves, and the error goes away
    with qtbot.waitSignal(dialog.saved):
        qtbot.mouseClick(dialog.save_button, Qt.MouseButton.LeftButton)
    assert not dialog.error_label.isVisible()
    assert load_settings().sidecar.template == "{stem}.ocr.{ext}"


def test_invalid_hotkey_shows_the_parser_message(
    dialog: SettingsDialog, qtbot, no_real_hotkey_parser
) -> None:
    dialog.hotkey_edit.setText("F13")
    with qtbot.assertNotEmitted(dialog.saved):
        qtbot.mouseClick(dialog.save_button, Qt.MouseButton.LeftButton)
    assert dialog.error_label.text() == "Capture hotkey: use keys joined by '+', such as <ctrl>+<alt>+t"
    assert not config_path().exists()


def test_hotkeys_go_through_the_real_parser(dialog: SettingsDialog, qtbot) -> None:
    pytest.importorskip("textdrop.desktop.capture.hotkey")
    from textdrop.desktop.options import DesktopOptions

    assert settings_dialog.check_hotkey(DesktopOptions().hotkey) == (DesktopOptions().hotkey, None)
    dialog.hotkey_edit.setText("t")  # would fire while typing
    assert dialog.save() is None
    assert dialog.error_label.text().startswith("Capture hotkey: 't'")
    dialog.hotkey_edit.setText("<CTRL>+<shift>+O")
    assert dialog.save() is not None
    assert load_settings().desktop.hotkey == "<ctrl>+<shift>+o"  # saved in canonical form


def test_broken_config_is_reported_and_left_alone(textdrop_home: Path, qtbot, xdg: Path) -> None:
    path = write_config(textdrop_home, "engine = \n")
    dialog = SettingsDialog()
    qtbot.addWidget(dialog)
    assert "Cannot read the configuration file" in dialog.error_label.text()
    dialog.copy_check.setChecked(False)
    assert dialog.save() is None
    assert "Cannot read the configuration file" in dialog.error_label.text()
    assert path.read_text(encoding="utf-8") == "engine = \n"


def test_cancel_discards_the_edits(configured: Path, dialog: SettingsDialog) -> None:
    dialog.set_engine_name("rapid")
    dialog.hotkey_edit.setText("<ctrl>+q")
    dialog.reject()
    assert dialog.engine_name() == "auto"
    assert dialog.hotkey_edit.text() == "Ctrl+Alt+O"  # the default, as the menu shows it
    assert load_settings().engine == "auto"


# -- the model catalogue ----------------------------------------------------------------------------------


class FakePull:
    """Stands in for download.pull: reports progress in ten steps, ``pause`` seconds apart."""

    def __init__(self, pause: float = 0.03) -> None:
        self.pause = pause
        self.reported: list[int] = []
        self.finished: set[str] = set()
        self.threads: list[str] = []
        self.held = False
        self.steps = threading.Semaphore(0)
        """With :attr:`held`, each step waits for a release of this semaphore."""

    def __call__(self, entry, backend, *, progress=None):
        self.threads.append(threading.current_thread().name)
        total = 10 * 1_000_000_000  # above 2**31: the signal must carry big numbers
        for step in range(11):
            if self.held and not self.steps.acquire(timeout=5):
                raise TimeoutError("the test never released the next step")
            done = step * total // 10
            self.reported.append(done)
            progress(done, total)
            time.sleep(self.pause)
        self.finished.add(entry.id)
        return object()

    def is_downloaded(self, entry, backend) -> bool:
        return entry.id in self.finished


@pytest.fixture
def fake_pull(monkeypatch: pytest.MonkeyPatch) -> FakePull:
    pull = FakePull()
    monkeypatch.setattr(download, "pull", pull)
    monkeypatch.setattr(download, "is_downloaded", pull.is_downloaded)
    monkeypatch.setattr(download, "memory_warning", lambda entry, backend: f"{entry.id} is big for {backend}")
    return pull


def cell(dialog: SettingsDialog, row: int, column: str) -> str:
    """The text of the model table's cell in ``row`` under the header ``column``."""
    return dialog.model_table.item(row, MODEL_COLUMNS.index(column)).text()


def heartbeat() -> tuple[QTimer, list[float]]:
    ticks: list[float] = []
    timer = QTimer()
    timer.setInterval(10)
    timer.timeout.connect(lambda: ticks.append(time.monotonic()))
    timer.start()
    return timer, ticks


def test_download_reports_progress_and_marks_the_model(dialog: SettingsDialog, qtbot, fake_pull) -> None:
    dialog.tabs.setCurrentIndex(1)
    dialog.backend_combo.setCurrentIndex(dialog.backend_combo.findData("llama"))
    assert dialog.select_entry("granite-docling-258m")
    row = [entry.id for entry in dialog.entries()].index("granite-docling-258m")
    assert cell(dialog, row, "Downloaded") == "no"
    assert cell(dialog, row, "Size") == "380 MB"
    assert cell(dialog, row, "Memory") == "475 MB"  # 1.25 × the download: no measurement published
    assert cell(dialog, row, "Licence") == "Apache-2.0"
    assert cell(dialog, row, "Commercial use") == "yes"
    assert cell(dialog, row, "Score") == "-"
    assert "default" in cell(dialog, row, "Model")
    scored = [entry.id for entry in dialog.entries()].index("lightonocr-2-1b")
    assert cell(dialog, scored, "Score") == "olmOCR-Bench 83.2"
    assert "2601.14251" in dialog.model_table.item(scored, MODEL_COLUMNS.index("Score")).toolTip()
    gemma = [entry.id for entry in dialog.entries()].index("gemma3-4b")
    assert cell(dialog, gemma, "Licence") == "Gemma Terms of Use"
    qtbot.waitUntil(lambda: dialog.warning_label.text() == "granite-docling-258m is big for llama")

    values: list[int] = []
    dialog.download_progress.valueChanged.connect(values.append)
    statuses: list[str] = []
    dialog.download_progress.valueChanged.connect(lambda _v: statuses.append(dialog.download_status.text()))
    timer, ticks = heartbeat()
    try:
        with qtbot.waitSignal(dialog.download_finished, timeout=10_000) as signal:
            qtbot.mouseClick(dialog.download_button, Qt.MouseButton.LeftButton)
            assert dialog.downloading == "granite-docling-258m"
            assert not dialog.download_button.isEnabled() and dialog.cancel_download_button.isEnabled()
    finally:
        timer.stop()
    assert signal.args == ["granite-docling-258m"]
    assert fake_pull.threads and fake_pull.threads[0] != threading.main_thread().name
    assert dialog.download_progress.value() == 100
    assert 50 in values or any(0 < v < 100 for v in values)  # it moved in steps, not in one jump
    assert any(re.search(r"of 10\.0 GB · [\d.]+ [kMG]B/s · about \d+ (s|min) left$", t) for t in statuses), (
        statuses
    )
    assert len(ticks) >= 20  # the GUI thread kept running during the 0.3 s download
    assert cell(dialog, row, "Downloaded") == "yes"
    assert "Downloaded granite-docling-258m" in dialog.download_status.text()
    assert dialog.downloading is None and dialog.download_button.isEnabled()

    qtbot.mouseClick(dialog.use_button, Qt.MouseButton.LeftButton)
    assert dialog.engine_spec() == "llama:granite-docling-258m"


def test_cancel_stops_a_download(dialog: SettingsDialog, qtbot, fake_pull) -> None:
    fake_pull.pause = 0.0
    fake_pull.held = True  # each step waits until the test releases it
    dialog.backend_combo.setCurrentIndex(dialog.backend_combo.findData("llama"))
    assert dialog.select_entry("qwen3-vl-2b")
    assert dialog.start_download()
    assert not dialog.start_download()  # one at a time
    fake_pull.steps.release(4)  # 0 %, 10 %, 20 %, 30 %
    qtbot.waitUntil(lambda: dialog.download_progress.value() == 30, timeout=5_000)
    qtbot.mouseClick(dialog.cancel_download_button, Qt.MouseButton.LeftButton)
    assert "Cancelling" in dialog.download_status.text()
    fake_pull.steps.release(7)  # the rest: the next progress report must raise
    qtbot.waitUntil(lambda: dialog.downloading is None, timeout=5_000)
    assert "cancelled" in dialog.download_status.text()
    assert dialog.download_progress.value() == 0
    assert fake_pull.reported[-1] == 4 * 1_000_000_000  # the first report after Cancel raised
    assert "qwen3-vl-2b" not in fake_pull.finished
    row = [entry.id for entry in dialog.entries()].index("qwen3-vl-2b")
    assert cell(dialog, row, "Downloaded") == "no"


def test_download_failure_is_shown(dialog: SettingsDialog, qtbot, monkeypatch) -> None:
    def pull(entry, backend, *, progress=None):
        raise download.DownloadError("The hub cannot be reached; try again later.")

    monkeypatch.setattr(download, "pull", pull)
    monkeypatch.setattr(download, "memory_warning", lambda entry, backend: None)
    assert dialog.select_entry("granite-docling-258m")
    dialog.start_download()
    qtbot.waitUntil(lambda: dialog.downloading is None, timeout=5_000)
    assert dialog.download_status.text() == "The hub cannot be reached; try again later."


def test_progress_callback_raises_once_cancelled(dialog: SettingsDialog, qtbot, monkeypatch) -> None:
    raised: list[BaseException] = []

    def pull(entry, backend, *, progress=None):
        progress(1, 10)
        dialog._abort.set()  # what Cancel does, from the worker's point of view
        try:
            progress(2, 10)
        except DownloadCancelled as exc:
            raised.append(exc)
            raise

    monkeypatch.setattr(download, "pull", pull)
    assert dialog.select_entry("granite-docling-258m")
    dialog.start_download()
    qtbot.waitUntil(lambda: dialog.downloading is None, timeout=5_000)
    assert len(raised) == 1 and "cancelled" in dialog.download_status.text()


def test_an_engine_that_cannot_run_is_not_saved_silently(
    configured: Path, dialog: SettingsDialog, qtbot, fake_pull
) -> None:
    before = configured.read_text(encoding="utf-8")
    dialog.set_engine_name("llama")
    dialog.model_edit.setText(
        "granite-docling-258m"
    )  # llama.cpp is installed here; the model is not downloaded
    with qtbot.assertNotEmitted(dialog.saved):
        qtbot.mouseClick(dialog.save_button, Qt.MouseButton.LeftButton)
    assert configured.read_text(encoding="utf-8") == before
    message = dialog.error_label.text()
    assert "llama.cpp · IBM Granite-Docling 258M cannot run yet" in message
    assert "download it on the Models tab" in message and "Save again" in message
    assert dialog.tabs.tabText(dialog.tabs.currentIndex()) == "Models"  # the download, offered
    assert dialog.selected_entry() is not None and dialog.selected_entry().id == "granite-docling-258m"
    assert dialog.download_button.isEnabled() and dialog.save_button.text() == "Save anyway"
    with qtbot.waitSignal(dialog.saved):  # said once: a second Save keeps the choice
        qtbot.mouseClick(dialog.save_button, Qt.MouseButton.LeftButton)
    assert load_settings().engine == "llama:granite-docling-258m"


def test_an_engine_whose_runtime_is_missing_gives_the_install_hint(
    configured: Path, dialog: SettingsDialog, monkeypatch: pytest.MonkeyPatch
) -> None:
    from textdrop.engine.registry import engine_class

    cls = engine_class("llama")
    monkeypatch.setattr(cls, "is_available", classmethod(lambda c: False))
    dialog.set_engine_name("llama")
    dialog.model_edit.setText("granite-docling-258m")
    assert dialog.save() is None
    assert "llama.cpp is not installed here." in dialog.error_label.text()
    assert cls.install_hint and cls.install_hint in dialog.error_label.text()
    assert dialog.tabs.tabText(dialog.tabs.currentIndex()) == "General"  # no download to offer
    assert load_settings().engine == "auto"


def test_the_hotkey_field_records_the_keys_pressed(configured: Path, dialog: SettingsDialog, qtbot) -> None:
    from PySide6.QtTest import QTest

    dialog.hotkey_edit.setFocus()
    QTest.keyClick(
        dialog.hotkey_edit,
        Qt.Key.Key_K,
        Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier,
    )
    assert dialog.hotkey_edit.text() == "Ctrl+Shift+K"  # the menu's notation
    QTest.keyClick(dialog.hotkey_edit, Qt.Key.Key_Backspace)
    assert dialog.hotkey_edit.text() == ""
    QTest.keyClick(dialog.hotkey_edit, Qt.Key.Key_F9, Qt.KeyboardModifier.AltModifier)
    assert dialog.hotkey_edit.text() == "Alt+F9"
    assert dialog.save() is not None
    assert load_settings().desktop.hotkey == "<alt>+<f9>"


def test_the_hotkey_field_accepts_the_menu_notation_typed(configured: Path, dialog: SettingsDialog) -> None:
    dialog.hotkey_edit.setText("Ctrl+Alt+T")  # what the tray menu shows
    assert dialog.save() is not None
    assert load_settings().desktop.hotkey == "<ctrl>+<alt>+t"
    assert "hotkey" in configured.read_text(encoding="utf-8")


def test_clipboard_and_icon_options_are_saved(configured: Path, dialog: SettingsDialog) -> None:
    assert not dialog.markdown_check.isChecked() and dialog.icon_combo.currentData() == "auto"
    dialog.markdown_check.setChecked(True)
    dialog.icon_combo.setCurrentIndex(dialog.icon_combo.findData("dark"))
    assert dialog.save() is not None
    desktop = load_settings().desktop
    assert desktop.copy_markdown is True and desktop.tray_icon == "dark"
    text = configured.read_text(encoding="utf-8")
    assert "copy_markdown = true" in text and 'tray_icon = "dark"' in text and "hotkey" not in text


@pytest.mark.skipif(sys.platform == "darwin", reason="MLX is offered on Apple Silicon")
def test_the_models_tab_offers_only_backends_that_run_here(dialog: SettingsDialog) -> None:
    backends = [dialog.backend_combo.itemData(i) for i in range(dialog.backend_combo.count())]
    assert backends == ["llama"]


# -- start at login ---------------------------------------------------------------------------------------


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="XDG autostart is for Linux desktops")
def test_start_at_login_writes_and_removes_the_autostart_entry(xdg: Path, qtbot) -> None:
    path = xdg / "autostart" / "textdrop.desktop"
    assert autostart_path() == path
    assert set_start_at_login(True) == path
    entry = path.read_text(encoding="utf-8")
    assert entry.startswith("[Desktop Entry]\n") and "Type=Application" in entry
    exec_line = next(line for line in entry.splitlines() if line.startswith("Exec="))
    assert exec_line.endswith(" tray")
    assert set_start_at_login(False) == path and not path.exists()
    assert set_start_at_login(False) == path  # already gone: fine

    dialog = SettingsDialog()
    qtbot.addWidget(dialog)
    dialog.login_check.setChecked(True)
    assert dialog.save() is not None
    assert path.is_file() and load_settings().desktop.start_at_login is True
    dialog.login_check.setChecked(False)
    assert dialog.save() is not None
    assert not path.exists() and load_settings().desktop.start_at_login is False


def test_exec_quoting_follows_the_desktop_entry_spec() -> None:
    quote = autostart._exec_quote
    assert quote("/usr/bin/textdrop") == "/usr/bin/textdrop"
    assert quote("/home/a b/venv/bin/python") == '"/home/a b/venv/bin/python"'
    assert quote('/x/"$y`\\') == '"/x/\\"\\$y\\`\\\\"'
    assert quote("100%") == "100%%"


def test_start_at_login_on_macos_writes_a_launch_agent(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, xdg: Path
) -> None:
    import plistlib

    monkeypatch.setattr(sys, "platform", "darwin")
    monkeypatch.setattr(Path, "home", lambda: tmp_path)
    path = tmp_path / "Library" / "LaunchAgents" / "io.github.textdrop.tray.plist"
    assert set_start_at_login(True) == path
    agent = plistlib.loads(path.read_bytes())
    assert agent["Label"] == "io.github.textdrop.tray" and agent["RunAtLoad"] is True
    assert agent["ProgramArguments"] == autostart.tray_command()
    assert set_start_at_login(False) == path and not path.exists()
    assert not (xdg / "autostart").exists()


def test_start_at_login_on_windows_writes_to_the_startup_folder(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(sys, "platform", "win32")
    monkeypatch.setenv("APPDATA", str(tmp_path / "Roaming"))
    monkeypatch.setattr(
        autostart, "tray_command", lambda: [r"C:\Program Files\textdrop\textdrop.exe", "tray"]
    )
    path = (
        tmp_path
        / "Roaming"
        / "Microsoft"
        / "Windows"
        / "Start Menu"
        / "Programs"
        / "Startup"
        / "textdrop.cmd"
    )
    assert set_start_at_login(True) == path
    assert path.read_bytes() == b'@start "" "C:\\Program Files\\textdrop\\textdrop.exe" tray\r\n'
    assert set_start_at_login(False) == path and not path.exists()


# -- screenshots ----------------------------------------------------------------------------------------


def test_screenshots_of_the_dialog(
    configured: Path, dialog: SettingsDialog, qtbot, tmp_path: Path, fake_pull
) -> None:
    folder = screenshots_dir(tmp_path)
    dialog.resize(780, 540)
    dialog._check(1, 1).setChecked(True)
    qtbot.wait(50)
    for index, name in enumerate(("general", "models", "folders")):
        dialog.tabs.setCurrentIndex(index)
        if name == "models":
            dialog.backend_combo.setCurrentIndex(dialog.backend_combo.findData("llama"))
            dialog.select_entry("granite-docling-258m")
            dialog.download_progress.setValue(42)
            dialog.download_status.setText("Downloading granite-docling-258m: 160 MB of 380 MB")
            qtbot.waitUntil(lambda: dialog.warning_label.isVisible())
        qtbot.wait(50)
        image = dialog.grab()
        assert image.width() >= 700
        assert image.save(str(folder / f"settings_{name}.png"))


def test_languages_are_chosen_on_the_general_tab(configured: Path, dialog: SettingsDialog) -> None:
    assert dialog.languages_edit.isVisibleTo(dialog) and dialog.languages_edit.text() == ""
    assert dialog.save() is not None  # an untouched field writes nothing about languages
    assert "languages =" not in configured.read_text(encoding="utf-8")
    dialog.languages_edit.setText("ru, en")
    assert dialog.save() is not None
    assert tuple(load_settings().recognize.languages) == ("ru", "en")
    assert 'languages = ["ru", "en"]' in configured.read_text(encoding="utf-8")
    dialog.reload()
    assert dialog.languages_edit.text() == "ru, en"
