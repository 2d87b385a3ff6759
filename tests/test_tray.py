"""The tray app for real on the Xvfb display: single instance, capture by hotkey to the clipboard,
``textdrop capture`` reaching the tray, a responsive GUI thread while an engine works, screenshots.
"""

from __future__ import annotations

import itertools
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from rapidfuzz.distance import Levenshtein

from tests.helpers.display import screenshots_dir
from tests.helpers.fake_engines import SlowEngine
from textdrop.engine import registry
from textdrop.settings import load_settings

pytestmark = [pytest.mark.gui, pytest.mark.usefixtures("x_display"), pytest.mark.timeout(180)]

ROOT = Path(__file__).parent.parent
SAMPLE = ROOT / "assets" / "samples" / "tess_phototest.tif"  # 640x480, 12 pt text
MAX_CER = 0.15
"""CER of the captured region's text against the sample's ground truth (the full-page accuracy test
allows 0.05; a screen capture loses nothing, but the region is dragged by pixels)."""


def textdrop(*args: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    """Run ``textdrop ARGS`` in a child process (same TEXTDROP_HOME and DISPLAY as the test)."""
    command = [sys.executable, "-m", "tests.helpers.run_textdrop", *args]
    return subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=timeout)


@pytest.fixture
def tray(qapp: object, monkeypatch: pytest.MonkeyPatch) -> Iterator[object]:
    """A started TrayApp on the embedded engine, in this process; notifications are recorded."""
    from textdrop.desktop.app import TrayApp

    app = TrayApp(qapp, load_settings(), watch=False)  # type: ignore[arg-type]
    shown: list[tuple[str, str]] = []
    monkeypatch.setattr(app.notifier, "show", lambda title, message, **_: shown.append((title, message)))
    app.shown = shown  # type: ignore[attr-defined]
    assert app.start()
    yield app
    app.shutdown()


def xclip_text(qtbot: object, target: str | None = None) -> str:
    """The clipboard as another X client sees it (``target``: one format, e.g. ``TARGETS``, ``text/html``).
    Qt's loop keeps running meanwhile: if this process owns the clipboard, xclip's request is answered by
    it (a blocking run would deadlock)."""
    command = ["xclip", "-selection", "clipboard", *(["-t", target] if target else []), "-o"]
    reader = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    qtbot.waitUntil(lambda: reader.poll() is not None, timeout=5_000)  # type: ignore[attr-defined]
    return reader.stdout.read() if reader.stdout else ""


def test_second_launch_hands_its_request_to_the_running_tray(tray: object, qtbot: object) -> None:
    requests: list[str] = []
    tray.server.request.connect(requests.append)  # type: ignore[attr-defined]
    child = subprocess.Popen(
        [sys.executable, "-m", "tests.helpers.run_textdrop", "tray"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    qtbot.waitUntil(lambda: child.poll() is not None, timeout=20_000)  # type: ignore[attr-defined]
    assert child.returncode == 0 and "already running" in child.stdout.read()  # type: ignore[union-attr]
    assert requests == ["show"]
    qtbot.waitUntil(lambda: tray._drop_window is not None and tray._drop_window.isVisible())  # type: ignore[attr-defined]


def test_capture_command_waits_for_the_trays_capture_and_returns_its_code(
    tray: object, qtbot: object
) -> None:
    child = subprocess.Popen(
        [sys.executable, "-m", "tests.helpers.run_textdrop", "capture"],
        cwd=ROOT,
        stderr=subprocess.PIPE,
        text=True,
    )
    qtbot.waitUntil(lambda: tray._capture is not None, timeout=20_000)  # type: ignore[attr-defined]
    qtbot.wait(500)  # type: ignore[attr-defined]
    assert child.poll() is None  # still waiting for the capture
    subprocess.run(["xdotool", "key", "Escape"], check=True)
    qtbot.waitUntil(lambda: child.poll() is not None, timeout=30_000)  # type: ignore[attr-defined]
    assert child.returncode == 130 and "cancelled" in child.stderr.read()  # type: ignore[union-attr]
    assert tray._capture is None  # type: ignore[attr-defined]


def test_capture_command_returns_0_once_the_trays_capture_is_copied(
    fake_engine: object, tray: object, qtbot: object
) -> None:
    child = subprocess.Popen([sys.executable, "-m", "tests.helpers.run_textdrop", "capture"], cwd=ROOT)
    qtbot.waitUntil(lambda: tray._capture is not None, timeout=20_000)  # type: ignore[attr-defined]
    qtbot.wait(300)  # type: ignore[attr-defined]  # the overlays map
    drag(300, 300, 600, 500, qtbot)
    qtbot.waitUntil(lambda: child.poll() is not None, timeout=20_000)  # type: ignore[attr-defined]
    assert child.returncode == 0
    assert xclip_text(qtbot) == "fake page 300x200"
    assert tray.history.entries[0].what == "capture"  # type: ignore[attr-defined]


def drag(x0: int, y0: int, x1: int, y1: int, qtbot: object) -> None:
    """Drag with the left mouse button from (x0, y0) to (x1, y1), screen pixels, through the X server."""
    for step in (
        ["mousemove", str(x0), str(y0)],
        ["mousedown", "1"],
        ["mousemove", str((x0 + x1) // 2), str((y0 + y1) // 2)],
        ["mousemove", str(x1), str(y1)],
        ["mouseup", "1"],
    ):
        subprocess.run(["xdotool", *step], check=True)
        qtbot.wait(50)  # type: ignore[attr-defined]


def test_hotkey_capture_puts_the_text_on_the_clipboard(tray: object, qtbot: object, tmp_path: Path) -> None:
    from PySide6.QtGui import QPixmap
    from PySide6.QtWidgets import QLabel

    label = QLabel()
    label.setPixmap(QPixmap(str(SAMPLE)))
    label.setWindowTitle("sample scan")
    label.move(100, 120)
    label.show()
    qtbot.waitExposed(label)  # type: ignore[attr-defined]
    origin = label.mapToGlobal(label.rect().topLeft())
    qtbot.waitUntil(lambda: tray.queue.loaded.done(), timeout=30_000)  # type: ignore[attr-defined]
    subprocess.run(["xdotool", "key", "ctrl+alt+o"], check=True)
    qtbot.waitUntil(lambda: tray._capture is not None, timeout=5_000)  # type: ignore[attr-defined]
    qtbot.wait(300)  # type: ignore[attr-defined]  # the overlays map
    drag(origin.x() + 5, origin.y() + 5, origin.x() + 635, origin.y() + 475, qtbot)
    qtbot.waitUntil(lambda: bool(tray.history.entries), timeout=30_000)  # type: ignore[attr-defined]
    truth = " ".join(SAMPLE.with_suffix(".gt.txt").read_text().split())
    got = " ".join(xclip_text(qtbot).split())
    assert Levenshtein.normalized_distance(got, truth) <= MAX_CER, got
    title, message = tray.shown[-1]  # type: ignore[attr-defined]
    assert title.startswith("Copied: ") and "from the capture" in message
    assert "quick brown" in tray.history.entries[0].markdown  # type: ignore[attr-defined]
    label.close()


def test_gui_thread_stays_responsive_while_an_engine_works(
    qapp: object, qtbot: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    from PySide6.QtCore import QTimer

    from textdrop.desktop.bridge import JobBridge
    from textdrop.engine.jobs import JobQueue

    monkeypatch.setitem(registry.BUILTIN_ENGINES, "slow", "tests.helpers.fake_engines:SlowEngine")
    SlowEngine.reset()
    monkeypatch.setattr(SlowEngine, "delay", 1.5)
    ticks: list[float] = []
    heartbeat = QTimer()
    heartbeat.timeout.connect(lambda: ticks.append(time.monotonic()))
    with JobQueue("slow") as queue:
        bridge = JobBridge(queue)
        done: list[int] = []
        bridge.finished.connect(lambda job_id, _result: done.append(job_id))
        heartbeat.start(20)
        bridge.submit(SAMPLE)
        qtbot.waitUntil(lambda: bool(done), timeout=20_000)  # type: ignore[attr-defined]
        heartbeat.stop()
    gaps = [b - a for a, b in itertools.pairwise(ticks)]
    assert len(ticks) >= 50, "the event loop stalled while the engine worked"
    assert max(gaps) < 0.25


def test_tray_menu_screenshot(tray: object, qtbot: object, tmp_path: Path) -> None:
    from PySide6.QtCore import QPoint

    menu = tray.menu  # type: ignore[attr-defined]
    menu.popup(QPoint(900, 40))
    qtbot.waitExposed(menu)  # type: ignore[attr-defined]
    labels = [action.text() for action in menu.actions() if action.text()]
    assert labels[0].startswith("Capture region\tCtrl+Alt+O")
    assert {"Open drop window", "OCR image on clipboard", "Recent results", "Watched folders", "Quit"} <= {
        label.split("\t")[0] for label in labels
    }
    path = screenshots_dir(tmp_path) / "tray-menu.png"
    assert menu.grab().save(str(path)) and path.stat().st_size > 1000
    menu.close()
    assert tray.tray.isVisible()  # type: ignore[attr-defined]


def test_ocr_copy_leaves_the_text_on_the_clipboard(
    qtbot: object, tmp_path: Path, fake_engine: object, capsys: pytest.CaptureFixture[str]
) -> None:
    from textdrop.cli import run

    source = tmp_path / "scan.tif"
    source.write_bytes(SAMPLE.read_bytes())
    assert run(["ocr", str(source), "--engine", "fake", "--copy"]) == 0
    assert "Copied to the clipboard (xclip)" in capsys.readouterr().err
    assert xclip_text(qtbot).strip() == "fake page 640x480"


def test_engine_menu_switches_the_engine_without_a_restart(tray: object, qtbot: object) -> None:
    from PySide6.QtWidgets import QMenu

    engine_menu = next(a.menu() for a in tray.menu.actions() if a.text().startswith("Engine: "))  # type: ignore[attr-defined]
    assert isinstance(engine_menu, QMenu)
    tray._fill_engine_menu(engine_menu)  # type: ignore[attr-defined]
    choices = {action.text(): action for action in engine_menu.actions() if action.isCheckable()}
    assert {"Automatic", "Built-in (CPU)"} <= set(choices) and choices["Automatic"].isChecked()
    choices["Built-in (CPU)"].trigger()
    assert load_settings().engine == "rapid" and tray.bridge.engine == "rapid"  # type: ignore[attr-defined]
    assert any(a.text().startswith("Engine: Built-in (CPU)") for a in tray.menu.actions())  # type: ignore[attr-defined]


def test_watched_folder_results_reach_the_clipboard_and_notifications(
    qapp: object,
    qtbot: object,
    tmp_path: Path,
    fake_engine: object,
    textdrop_home: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from tests.conftest import write_config
    from textdrop.desktop.app import TrayApp

    folder = tmp_path / "Screenshots"
    folder.mkdir()
    write_config(
        textdrop_home,
        f'engine = "fake"\n[[folders]]\npath = "{folder}"\nsettle_seconds = 0.2\n'
        "clipboard = true\nnotify = true\n",
    )
    app = TrayApp(qapp, load_settings(), watch=True)  # type: ignore[arg-type]
    shown: list[tuple[str, str]] = []
    monkeypatch.setattr(app.notifier, "show", lambda title, message, **_: shown.append((title, message)))
    assert app.start()
    try:
        qtbot.waitUntil(lambda: app.watcher is not None, timeout=5_000)  # type: ignore[attr-defined]
        (folder / "shot.tif").write_bytes(SAMPLE.read_bytes())
        qtbot.waitUntil(lambda: bool(shown), timeout=20_000)  # type: ignore[attr-defined]
        assert shown[0] == ("Read shot.tif", "fake page 640x480")
        assert xclip_text(qtbot).strip() == "fake page 640x480"
        assert (folder / "shot.tif.md").exists()
        app.toggle_pause(folder)
        assert app.watcher is None and folder in app.paused
    finally:
        app.shutdown()


def test_capture_without_a_tray_reads_the_region_itself(
    qapp: object, qtbot: object, tmp_path: Path, textdrop_home: Path
) -> None:
    from PySide6.QtGui import QPixmap
    from PySide6.QtWidgets import QLabel

    from tests.conftest import write_config

    write_config(textdrop_home, 'engine = "fake"\n[desktop]\nnotify = false\n')
    label = QLabel()
    label.setPixmap(QPixmap(str(SAMPLE)))
    label.move(200, 200)
    label.show()
    qtbot.waitExposed(label)  # type: ignore[attr-defined]
    origin = label.mapToGlobal(label.rect().topLeft())
    child = subprocess.Popen(
        [sys.executable, "-m", "tests.helpers.run_textdrop", "capture"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )

    def overlay_shown() -> bool:
        found = subprocess.run(["xdotool", "search", "--name", "textdrop capture"], capture_output=True)
        return found.returncode == 0

    qtbot.waitUntil(overlay_shown, timeout=20_000)  # type: ignore[attr-defined]
    qtbot.wait(300)  # type: ignore[attr-defined]
    x, y = origin.x(), origin.y()
    for step in (
        ["mousemove", str(x + 10), str(y + 10)],
        ["mousedown", "1"],
        ["mousemove", str(x + 160), str(y + 110)],
        ["mousemove", str(x + 310), str(y + 210)],
        ["mouseup", "1"],
    ):
        subprocess.run(["xdotool", *step], check=True)
        qtbot.wait(50)  # type: ignore[attr-defined]
    qtbot.waitUntil(lambda: child.poll() is not None, timeout=30_000)  # type: ignore[attr-defined]
    assert child.returncode == 0
    assert child.stdout is not None and child.stdout.read().strip() == "fake page 300x200"
    assert xclip_text(qtbot).strip() == "fake page 300x200"  # kept after the process exited
    label.close()


def test_a_capture_skips_page_orientation_detection(tray: object, monkeypatch: pytest.MonkeyPatch) -> None:
    """Screens are upright: the direction classifier's time is saved on every capture."""
    from PySide6.QtGui import QImage

    from textdrop.engine.jobs import Priority

    submitted: list[tuple[object, object]] = []
    monkeypatch.setattr(
        tray.bridge,  # type: ignore[attr-defined]
        "submit",
        lambda source, priority, options: submitted.append((priority, options)) or 1,
    )
    tray._captured(QImage(str(SAMPLE)))  # type: ignore[attr-defined]
    ((priority, options),) = submitted
    assert priority == Priority.INTERACTIVE and options.detect_orientation is False  # type: ignore[attr-defined]
    assert tray.settings.recognize.detect_orientation  # type: ignore[attr-defined]  # the rest keep it


# -- a tray configured as people use it -------------------------------------------------------------------

REALISTIC = """\
# my textdrop
engine = "llama:granite-docling-258m"  # a VLM

[sidecar]
template = "{{stem}}.ocr.{{ext}}"

[desktop]
hotkey = "<ctrl>+<shift>+<alt>+k"
notify = false

[[folders]]
path = "{scans}"
settle_seconds = 7

[[folders]]
path = "{shots}"
clipboard = true
"""


@pytest.fixture
def watching_tray(
    qapp: object, qtbot: object, tmp_path: Path, fake_engine: object, textdrop_home: Path, monkeypatch
) -> Iterator[object]:
    """A started TrayApp on the fake engine watching one folder (``tray.folder``) that notifies."""
    from tests.conftest import write_config
    from textdrop.desktop.app import TrayApp

    folder = tmp_path / "Screenshots"
    folder.mkdir()
    write_config(
        textdrop_home,
        f'engine = "fake"\n[[folders]]\npath = "{folder}"\nsettle_seconds = 0.2\nnotify = true\n',
    )
    app = TrayApp(qapp, load_settings(), watch=True)  # type: ignore[arg-type]
    shown: list[tuple[str, str]] = []
    monkeypatch.setattr(app.notifier, "show", lambda title, message, **_: shown.append((title, message)))
    app.shown, app.folder = shown, folder  # type: ignore[attr-defined]
    assert app.start()
    qtbot.waitUntil(lambda: app.watcher is not None, timeout=30_000)  # type: ignore[attr-defined]
    yield app
    app.shutdown()


def folder_labels(tray: object) -> list[str]:
    """The entries of the Watched folders menu, built as the user opens it."""
    tray._build_menu()  # type: ignore[attr-defined]
    return menu_labels(next(a.menu() for a in tray.menu.actions() if a.text() == "Watched folders"))  # type: ignore[attr-defined]


def test_a_dead_folder_observer_is_replaced_and_the_folder_still_read(watching_tray: object, qtbot) -> None:
    tray = watching_tray
    watcher = tray.watcher  # type: ignore[attr-defined]
    dead = list(watcher._observers)
    dead[0].stop()  # the observer thread ends, as when its folder is removed and re-created
    dead[0].join(5)
    # the tray's supervisor (WatchService.check every SUPERVISE_MS) starts new observers
    qtbot.waitUntil(
        lambda: bool(watcher._observers) and not set(dead) & set(watcher._observers), timeout=30_000
    )
    assert all(observer.is_alive() for observer in watcher._observers)
    assert tray.watcher is watcher and tray.watch_error is None  # type: ignore[attr-defined]
    (tray.folder / "shot.tif").write_bytes(SAMPLE.read_bytes())  # type: ignore[attr-defined]
    qtbot.waitUntil(lambda: bool(tray.shown), timeout=30_000)  # type: ignore[attr-defined]
    assert tray.shown == [("Read shot.tif", "fake page 640x480")]  # type: ignore[attr-defined]
    assert f"{tray.folder}  (watching)" in folder_labels(tray)  # type: ignore[attr-defined]


class Crash(BaseException):
    """What escapes the dispatch loop's per-file guard (which catches Exception)."""


def test_a_dead_watcher_is_notified_shown_in_the_menu_and_can_be_started_again(
    watching_tray: object, qtbot, monkeypatch: pytest.MonkeyPatch
) -> None:
    tray = watching_tray
    watcher = tray.watcher  # type: ignore[attr-defined]

    def crash() -> None:
        raise Crash("simulated")

    monkeypatch.setattr(watcher, "_dispatch_ready", crash)
    watcher._wake.set()  # the dispatch thread runs its loop now, and dies
    qtbot.waitUntil(lambda: tray.watcher is None, timeout=30_000)  # type: ignore[attr-defined]
    assert not watcher._thread.is_alive()
    assert tray.shown == [  # type: ignore[attr-defined]
        (
            "textdrop: folders are no longer watched",
            "The watch service failed: Crash('simulated'); see the log.",
        )
    ]
    labels = folder_labels(tray)
    assert f"{tray.folder}  (not watched)" in labels and "Watch again" in labels  # type: ignore[attr-defined]

    tray._build_menu()  # type: ignore[attr-defined]
    folders = next(a.menu() for a in tray.menu.actions() if a.text() == "Watched folders")  # type: ignore[attr-defined]
    next(a for a in folders.actions() if a.text() == "Watch again").trigger()
    assert tray.watcher is not None and tray.watcher is not watcher  # type: ignore[attr-defined]
    labels = folder_labels(tray)
    assert f"{tray.folder}  (watching)" in labels and "Watch again" not in labels  # type: ignore[attr-defined]
    (tray.folder / "shot.tif").write_bytes(SAMPLE.read_bytes())  # type: ignore[attr-defined]
    qtbot.waitUntil(lambda: len(tray.shown) == 2, timeout=30_000)  # type: ignore[attr-defined]
    assert tray.shown[1] == ("Read shot.tif", "fake page 640x480")  # type: ignore[attr-defined]


@pytest.fixture
def configured_tray(
    qapp: object, textdrop_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[object]:
    """A started TrayApp with two watched folders, a VLM engine, changed settings and a hotkey."""
    from tests.conftest import write_config
    from textdrop.desktop.app import TrayApp

    scans, shots = tmp_path / "Scans", tmp_path / "Screenshots"
    scans.mkdir()
    shots.mkdir()
    config = write_config(textdrop_home, REALISTIC.format(scans=scans, shots=shots))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    app = TrayApp(qapp, load_settings(), watch=True)  # type: ignore[arg-type]
    shown: list[tuple[str, str]] = []
    monkeypatch.setattr(app.notifier, "show", lambda title, message, **_: shown.append((title, message)))
    app.shown = shown  # type: ignore[attr-defined]
    app.config = config  # type: ignore[attr-defined]
    app.folders = (scans, shots)  # type: ignore[attr-defined]
    assert app.start()
    yield app
    app.shutdown()


def menu_labels(menu: object) -> list[str]:
    return [action.text() for action in menu.actions() if action.text()]  # type: ignore[attr-defined]


def test_the_full_menu_shows_through_the_x11_tray(configured_tray: object, qtbot: object) -> None:
    """The context menu opened by a right click on the icon in trayer, with watched folders running."""
    from PySide6.QtWidgets import QApplication, QMenu

    tray = configured_tray
    qtbot.waitUntil(lambda: tray.watcher is not None, timeout=30_000)  # type: ignore[attr-defined]
    qtbot.waitUntil(lambda: not tray.tray.geometry().isEmpty(), timeout=30_000)  # type: ignore[attr-defined]
    qtbot.waitUntil(lambda: tray.hotkey.running, timeout=5_000)  # type: ignore[attr-defined]
    center = tray.tray.geometry().center()  # type: ignore[attr-defined]
    subprocess.run(["xdotool", "mousemove", str(center.x()), str(center.y()), "click", "3"], check=True)
    qtbot.waitUntil(lambda: isinstance(QApplication.activePopupWidget(), QMenu), timeout=5_000)  # type: ignore[attr-defined]
    menu = QApplication.activePopupWidget()
    assert menu is tray.menu  # type: ignore[attr-defined]
    labels = menu_labels(menu)
    assert labels[:5] == [
        "Capture region\tCtrl+Alt+Shift+K",
        "Open drop window",
        "OCR image on clipboard",
        "Recent results",
        "Watched folders",
    ]
    assert labels[5].startswith("Engine: llama.cpp · IBM Granite-Docling 258M (")
    assert labels[6:] == ["Settings…", "Open log", "Quit"]
    scans, shots = tray.folders  # type: ignore[attr-defined]
    folders_menu = next(a.menu() for a in menu.actions() if a.text() == "Watched folders")
    assert menu_labels(folders_menu) == [
        f"{scans}  (watching)",
        f"{shots}  (watching)",
        "Backlog: 0 files",
        "Add or remove folders…",
    ]
    menu.close()
    assert tray.tray.isVisible()  # type: ignore[attr-defined]


def test_menu_entries_open_the_right_settings_tab(configured_tray: object, qtbot: object) -> None:
    tray = configured_tray
    folders_menu = next(a.menu() for a in tray.menu.actions() if a.text() == "Watched folders")  # type: ignore[attr-defined]
    next(a for a in folders_menu.actions() if a.text() == "Add or remove folders…").trigger()
    dialog = tray._settings_dialog  # type: ignore[attr-defined]
    assert dialog.isVisible() and dialog.tabs.tabText(dialog.tabs.currentIndex()) == "Folders"
    assert dialog.folder_table.rowCount() == 2
    engine_menu = tray._engine_action.menu()  # type: ignore[attr-defined]
    tray._fill_engine_menu(engine_menu)  # type: ignore[attr-defined]
    next(a for a in engine_menu.actions() if a.text() == "Download models…").trigger()
    assert dialog.tabs.tabText(dialog.tabs.currentIndex()) == "Models"
    dialog.reject()


def test_settings_show_the_current_values_and_write_only_changes(
    configured_tray: object, qtbot: object
) -> None:
    tray = configured_tray
    config: Path = tray.config  # type: ignore[attr-defined]
    tray.show_settings()  # type: ignore[attr-defined]
    dialog = tray._settings_dialog  # type: ignore[attr-defined]
    assert dialog.engine_spec() == "llama:granite-docling-258m"
    assert dialog.hotkey_edit.text() == "Ctrl+Alt+Shift+K" and not dialog.notify_check.isChecked()
    dialog.reject()

    # changed in the file by hand, then from the menu, while the dialog exists
    config.write_text(config.read_text(encoding="utf-8").replace("notify = false", "notify = true"))
    tray.set_engine("rapid")  # type: ignore[attr-defined]
    before = config.read_text(encoding="utf-8")
    tray.show_settings()  # type: ignore[attr-defined]
    assert dialog.engine_name() == "rapid" and dialog.notify_check.isChecked()
    with qtbot.waitSignal(dialog.saved):  # type: ignore[attr-defined]
        qtbot.mouseClick(dialog.save_button, Qt.MouseButton.LeftButton)  # type: ignore[attr-defined]
    assert config.read_text(encoding="utf-8") == before  # OK with nothing changed writes nothing

    tray.show_settings()  # type: ignore[attr-defined]
    dialog.copy_check.setChecked(False)
    assert dialog.save() is not None
    after = config.read_text(encoding="utf-8")
    assert after == before.replace("notify = true\n", "notify = true\ncopy_results = false\n")
    assert tray.settings.desktop.copy_results is False and tray.settings.engine == "rapid"  # type: ignore[attr-defined]


def test_clipboard_offers_plain_text_markdown_and_html(tray: object, qtbot: object) -> None:
    from textdrop.engine.result import OcrResult, PageResult

    markdown = "## Contact\n\n\\+1 415 555 0100\n\n| Item | Qty |\n| --- | --- |\n| Apples | 3 |\n"
    text = "Contact\n+1 415 555 0100\nItem\tQty\nApples\t3\n"
    result = OcrResult([PageResult(1, 600, 200, markdown, text)], "rapid")
    assert tray._deliver(result, None, "capture") == (0, f"copied {len(text.strip())} characters")  # type: ignore[attr-defined]
    targets = set(xclip_text(qtbot, "TARGETS").split())
    assert {"text/plain", "UTF8_STRING", "text/markdown", "text/html"} <= targets
    assert xclip_text(qtbot) == text.strip()  # what a terminal or a chat box pastes: no Markdown
    assert xclip_text(qtbot, "text/plain") == text.strip()
    assert xclip_text(qtbot, "text/markdown") == markdown.strip()
    html = xclip_text(qtbot, "text/html")
    assert "<h2>Contact</h2>" in html and "<table>" in html and "<td>Apples</td>" in html

    tray.settings.desktop.copy_markdown = True  # type: ignore[attr-defined]
    tray._deliver(result, None, "capture")  # type: ignore[attr-defined]
    assert xclip_text(qtbot) == markdown.strip()


def test_the_last_copied_text_outlives_the_tray(tray: object, qtbot: object) -> None:
    from textdrop.engine.result import OcrResult, PageResult

    result = OcrResult([PageResult(1, 600, 200, "# Kept", "Kept after quitting")], "rapid")
    tray._deliver(result, None, "capture")  # type: ignore[attr-defined]
    assert "text/html" in xclip_text(qtbot, "TARGETS")  # served by this process, through Qt
    tray.shutdown()  # type: ignore[attr-defined]
    from PySide6.QtWidgets import QApplication

    assert not QApplication.clipboard().ownsClipboard()  # xclip has taken it over before shutdown returned
    assert xclip_text(qtbot) == "Kept after quitting"  # now served by xclip
    assert "text/html" not in xclip_text(qtbot, "TARGETS")


def test_an_empty_capture_is_not_listed(tray: object) -> None:
    from textdrop.engine.result import OcrResult, PageResult

    result = OcrResult([PageResult(1, 600, 200, "", "")], "rapid")
    assert tray._deliver(result, None, "capture")[0] != 0  # type: ignore[attr-defined]
    assert tray.history.entries == []  # type: ignore[attr-defined]
    assert tray.shown[-1][0] == "textdrop: no text found"  # type: ignore[attr-defined]


def test_recent_results_survive_a_restart(
    fake_engine: object, qapp: object, tray: object, qtbot: object
) -> None:
    from textdrop.desktop.app import TrayApp
    from textdrop.engine.result import OcrResult, PageResult

    result = OcrResult(
        [PageResult(1, 600, 200, "# Invoice 42\n\nTotal 9.99", "Invoice 42\nTotal 9.99")], "rapid"
    )
    tray._deliver(result, None, "capture")  # type: ignore[attr-defined]
    tray.shutdown()  # type: ignore[attr-defined]
    again = TrayApp(qapp, load_settings(), watch=False)  # type: ignore[arg-type]
    (entry,) = again.history.search("invoice")
    assert entry.what == "capture" and entry.engine == "rapid" and entry.text == "Invoice 42\nTotal 9.99"
    assert again.history.search("nothing like it") == []
    again._build_menu()
    recent = next(a.menu() for a in again.menu.actions() if a.text() == "Recent results")
    assert recent.isEnabled() and menu_labels(recent)[0].endswith("capture: Invoice 42")


def test_ten_dropped_files_are_copied_once(
    fake_engine: object, tray: object, qtbot: object, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    copied: list[object] = []
    monkeypatch.setattr(tray, "_copy", lambda content: copied.append(content) or True)
    files = []
    for n in range(10):
        path = tmp_path / f"scan{n}.png"
        from PIL import Image

        Image.new("RGB", (100 + n, 50), "white").save(path)
        files.append(path)
    tray.show_drop_window()  # type: ignore[attr-defined]
    window = tray._drop_window  # type: ignore[attr-defined]
    rows = window.submit_files(files)
    qtbot.waitUntil(lambda: all(row.finished for row in rows), timeout=20_000)  # type: ignore[attr-defined]
    qtbot.waitUntil(lambda: bool(copied), timeout=5_000)  # type: ignore[attr-defined]
    qtbot.wait(200)  # type: ignore[attr-defined]
    assert len(copied) == 1
    newest = tray.history.entries[0]  # type: ignore[attr-defined]  # the last to finish
    assert copied[0].text == newest.text  # type: ignore[attr-defined]
    title, message = tray.shown[-1]  # type: ignore[attr-defined]
    assert title.startswith("Copied: fake page") and "the last of 10 files" in message
    assert len(tray.history.entries) == 10  # type: ignore[attr-defined]


def test_a_minimized_drop_window_is_restored(tray: object, qtbot: object) -> None:
    tray.show_drop_window()  # type: ignore[attr-defined]
    window = tray._drop_window  # type: ignore[attr-defined]
    qtbot.waitExposed(window)  # type: ignore[attr-defined]
    window.showMinimized()
    qtbot.waitUntil(window.isMinimized, timeout=5_000)  # type: ignore[attr-defined]
    tray.handle_request("show")  # type: ignore[attr-defined]  # what a second launch sends
    qtbot.waitUntil(lambda: not window.isMinimized() and window.isVisible(), timeout=5_000)  # type: ignore[attr-defined]


def test_open_log_opens_the_tray_log(tray: object, monkeypatch: pytest.MonkeyPatch) -> None:
    from PySide6.QtGui import QDesktopServices

    from textdrop.desktop.app import tray_log_path

    opened: list[str] = []
    monkeypatch.setattr(QDesktopServices, "openUrl", lambda url: opened.append(url.toLocalFile()) or False)
    next(a for a in tray.menu.actions() if a.text() == "Open log").trigger()  # type: ignore[attr-defined]
    assert opened == [str(tray_log_path())]
    title, message = tray.shown[-1]  # type: ignore[attr-defined]
    assert title == "textdrop: the log could not be opened" and str(tray_log_path()) in message


def test_tray_writes_a_rotating_log_file(textdrop_home: Path) -> None:
    import logging

    from textdrop.desktop.app import log_to_file, tray_log_path

    handler = log_to_file()
    try:
        logging.getLogger("textdrop.desktop.test").info("hello from the tray")
    finally:
        logging.getLogger().removeHandler(handler)
        handler.close()
    assert tray_log_path().is_relative_to(textdrop_home)
    assert "hello from the tray" in tray_log_path().read_text(encoding="utf-8")


def test_recent_results_are_searchable_in_the_drop_window(tray: object, qtbot: object) -> None:
    from PySide6.QtTest import QTest

    from textdrop.engine.result import OcrResult, PageResult

    for markdown, text in (
        ("# Invoice 42\n\nTotal 9.99", "Invoice 42\nTotal 9.99"),
        ("Shopping list", "Shopping list"),
    ):
        tray._deliver(OcrResult([PageResult(1, 600, 200, markdown, text)], "rapid"), None, "capture")  # type: ignore[attr-defined]
    tray.show_drop_window()  # type: ignore[attr-defined]
    window = tray._drop_window  # type: ignore[attr-defined]
    qtbot.waitExposed(window)  # type: ignore[attr-defined]
    window.search_edit.setFocus()
    QTest.keyClicks(window.search_edit, "total")
    assert window.history_list.isVisible() and window.history_list.count() == 1
    item = window.history_list.item(0)
    assert item.text().endswith("capture · rapid\nInvoice 42")
    rect = window.history_list.visualItemRect(item)
    qtbot.mouseClick(window.history_list.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())  # type: ignore[attr-defined]
    assert window.result_view.markdown() == "# Invoice 42\n\nTotal 9.99"
    window.search_edit.clear()
    assert not window.history_list.isVisible()


def test_a_failed_capture_says_why_and_what_to_do(tray: object) -> None:
    from textdrop.desktop.app import tray_log_path

    tray._pending[99] = "capture"  # type: ignore[attr-defined]
    tray._failed(99, "The image is 0 pixels wide.")  # type: ignore[attr-defined]
    title, message = tray.shown[-1]  # type: ignore[attr-defined]
    assert title == "textdrop: the capture could not be read"
    assert message.startswith("The image is 0 pixels wide. Try again;")
    assert "choose another engine" in message and str(tray_log_path()) in message


def test_the_engine_state_is_live_in_the_open_menu(tray: object, qtbot: object) -> None:
    from PySide6.QtCore import QPoint

    qtbot.waitUntil(lambda: tray.queue.loaded.done(), timeout=30_000)  # type: ignore[attr-defined]
    tray.menu.popup(QPoint(900, 40))  # type: ignore[attr-defined]
    qtbot.waitExposed(tray.menu)  # type: ignore[attr-defined]
    action = tray._engine_action  # type: ignore[attr-defined]
    # the load's result reaches the menu through a queued signal, a moment after the future is done
    qtbot.waitUntil(lambda: action.text() == "Engine: Automatic (ready)", timeout=5_000)  # type: ignore[attr-defined]
    tray.busy_changed.emit(True)  # type: ignore[attr-defined]
    assert action.text() == "Engine: Automatic (working…)"
    assert tray.tray.toolTip() == "textdrop: Built-in (CPU), working…"  # type: ignore[attr-defined]  # what auto chose
    tray.busy_changed.emit(False)  # type: ignore[attr-defined]
    assert action.text() == "Engine: Automatic (ready)"
    tray.menu.close()  # type: ignore[attr-defined]


def test_the_tray_icon_follows_the_chosen_panel_colour(tray: object) -> None:
    from PySide6.QtGui import QIcon

    from textdrop.desktop.icons import icon_path

    def pixels(icon: QIcon) -> object:
        return icon.pixmap(22, 22).toImage()

    for panel in ("dark", "light"):
        settings = tray.settings.model_copy(deep=True)  # type: ignore[attr-defined]
        settings.desktop.tray_icon = panel
        tray.apply_settings(settings)  # type: ignore[attr-defined]
        assert pixels(tray.tray.icon()) == pixels(QIcon(str(icon_path(f"tray-{panel}.png"))))  # type: ignore[attr-defined]


def test_a_failed_engine_is_notified_once(tray: object) -> None:
    tray.engine_state.emit("failed: the model file is damaged.")  # type: ignore[attr-defined]
    tray.busy_changed.emit(True)  # type: ignore[attr-defined]  # later jobs (another engine) come and go
    tray.busy_changed.emit(False)  # type: ignore[attr-defined]
    errors = [title for title, _ in tray.shown if title == "textdrop: the engine did not load"]  # type: ignore[attr-defined]
    assert len(errors) == 1
    assert tray._engine_label() == "Engine: Automatic (failed)"  # type: ignore[attr-defined]


def test_each_menu_entry_does_what_it_says(
    fake_engine: object, tray: object, qtbot: object, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every entry of the tray menu, triggered as a click on it would (the fake engine reads)."""
    from PIL import Image

    def trigger(label: str, menu: object = None) -> None:
        menu = menu or tray.menu  # type: ignore[attr-defined]
        tray._build_menu()  # type: ignore[attr-defined]  # what aboutToShow does
        next(a for a in menu.actions() if a.text().split("\t")[0] == label).trigger()  # type: ignore[attr-defined]

    qtbot.waitUntil(lambda: tray.queue.loaded.done(), timeout=30_000)  # type: ignore[attr-defined]
    image = tmp_path / "shot.png"
    Image.new("RGB", (320, 90), "white").save(image)
    subprocess.run(["xclip", "-selection", "clipboard", "-t", "image/png", "-i", str(image)], check=True)
    trigger("OCR image on clipboard")
    qtbot.waitUntil(lambda: bool(tray.history.entries), timeout=30_000)  # type: ignore[attr-defined]
    assert tray.history.entries[0].what == "clipboard image"  # type: ignore[attr-defined]
    assert xclip_text(qtbot) == "fake page 320x90"

    trigger("Open drop window")
    qtbot.waitUntil(lambda: tray._drop_window is not None and tray._drop_window.isVisible())  # type: ignore[attr-defined]

    tray._build_menu()  # type: ignore[attr-defined]
    recent = next(a.menu() for a in tray.menu.actions() if a.text() == "Recent results")  # type: ignore[attr-defined]
    recent.actions()[0].trigger()
    (view,) = tray._views  # type: ignore[attr-defined]
    assert view.isVisible() and view.markdown() == "fake page 320x90"
    view.close()

    trigger("Settings…")
    dialog = tray._settings_dialog  # type: ignore[attr-defined]
    assert dialog.isVisible() and dialog.tabs.tabText(dialog.tabs.currentIndex()) == "General"
    dialog.reject()

    quits: list[bool] = []
    monkeypatch.setattr(tray.app, "quit", lambda: quits.append(True))  # type: ignore[attr-defined]
    trigger("Quit")
    assert quits == [True] and not tray.tray.isVisible()  # type: ignore[attr-defined]


def test_folder_entries_pause_and_capture_region_starts_a_capture(
    configured_tray: object, qtbot: object
) -> None:
    tray = configured_tray
    scans, shots = tray.folders  # type: ignore[attr-defined]
    qtbot.waitUntil(lambda: tray.watcher is not None, timeout=30_000)  # type: ignore[attr-defined]

    def folders_menu() -> object:
        tray._build_menu()  # type: ignore[attr-defined]
        return next(a.menu() for a in tray.menu.actions() if a.text() == "Watched folders")  # type: ignore[attr-defined]

    next(a for a in folders_menu().actions() if a.text() == f"{scans}  (watching)").trigger()
    assert scans in tray.paused  # type: ignore[attr-defined]
    assert [f.path for f in tray.watcher.folders] == [shots]  # type: ignore[attr-defined]
    labels = menu_labels(folders_menu())
    assert f"{scans}  (paused)" in labels and f"{shots}  (watching)" in labels
    next(a for a in folders_menu().actions() if a.text() == f"{scans}  (paused)").trigger()
    assert tray.paused == set()  # type: ignore[attr-defined]

    tray._build_menu()  # type: ignore[attr-defined]
    next(a for a in tray.menu.actions() if a.text().startswith("Capture region")).trigger()  # type: ignore[attr-defined]
    qtbot.waitUntil(lambda: tray._capture is not None and bool(tray._capture.overlays), timeout=5_000)  # type: ignore[attr-defined]
    assert tray._capture.overlays[0].hint().endswith("Capture hotkey: Ctrl+Alt+Shift+K")  # type: ignore[attr-defined]
    subprocess.run(["xdotool", "key", "Escape"], check=True)
    qtbot.waitUntil(lambda: tray._capture is None, timeout=5_000)  # type: ignore[attr-defined]


def test_a_hotkey_the_desktop_refuses_is_said_once(tray: object, monkeypatch: pytest.MonkeyPatch) -> None:
    """No silent failure: when the hotkey cannot be registered (a Wayland portal without GlobalShortcuts,
    a key another app grabbed), the tray says why in a notification, once per reason."""
    reason = "This desktop offers no global shortcuts; bind `textdrop capture` as a desktop shortcut."
    monkeypatch.setattr(tray.hotkey, "available", lambda: (False, reason))  # type: ignore[attr-defined]
    tray._apply_hotkey()  # type: ignore[attr-defined]
    tray._apply_hotkey()  # type: ignore[attr-defined]  # settings applied again: the same reason stays quiet
    assert [s for s in tray.shown if s[0] == "textdrop: no capture hotkey"] == [  # type: ignore[attr-defined]
        ("textdrop: no capture hotkey", reason)
    ]


def test_fallback_pages_are_notified_not_passed_off_as_the_vlms(tray: object, tmp_path: Path) -> None:
    from textdrop.engine.result import OcrResult, PageResult
    from textdrop.settings import FolderOptions
    from textdrop.watcher.service import FileEvent

    page = PageResult(1, 640, 480, "text", "text", engine="rapid", fallback="rapid: the answer was empty")
    tray._deliver(OcrResult([page], engine="llama"), None, "screenshot")  # type: ignore[attr-defined]
    assert ("textdrop: the VLM failed on 1 page", "page 1 was read by rapid: the answer was empty") in (
        tray.shown  # type: ignore[attr-defined]
    )
    folder = tmp_path / "in"
    tray.settings.folders.append(FolderOptions(path=folder, notify=False))  # type: ignore[attr-defined]
    event = FileEvent(folder / "a.png", "done", markdown="x", fallbacks=("page 2 was read by rapid: loop",))
    tray._watched(event)  # type: ignore[attr-defined]
    assert tray.shown[-1] == (  # type: ignore[attr-defined]
        "textdrop: the VLM failed on 1 page of a.png",
        "page 2 was read by rapid: loop",
    )
