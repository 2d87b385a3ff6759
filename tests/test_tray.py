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
from rapidfuzz.distance import Levenshtein

from tests.helpers.display import screenshots_dir
from tests.helpers.fake_engines import SlowEngine
from textdrop.engine.backends import base
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


def xclip_text(qtbot: object) -> str:
    """The clipboard as another X client sees it. Qt's loop keeps running meanwhile: if this process
    owns the clipboard, xclip's request is answered by it (a blocking run would deadlock)."""
    reader = subprocess.Popen(["xclip", "-selection", "clipboard", "-o"], stdout=subprocess.PIPE, text=True)
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


def test_capture_command_reaches_the_tray(tray: object, qtbot: object) -> None:
    child = subprocess.Popen([sys.executable, "-m", "tests.helpers.run_textdrop", "capture"], cwd=ROOT)
    qtbot.waitUntil(lambda: child.poll() is not None, timeout=20_000)  # type: ignore[attr-defined]
    assert child.returncode == 0
    qtbot.waitUntil(lambda: tray._capture is not None, timeout=5_000)  # type: ignore[attr-defined]
    subprocess.run(["xdotool", "key", "Escape"], check=True)
    qtbot.waitUntil(lambda: tray._capture is None, timeout=5_000)  # type: ignore[attr-defined]


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
    subprocess.run(["xdotool", "key", "ctrl+alt+t"], check=True)
    qtbot.waitUntil(lambda: tray._capture is not None, timeout=5_000)  # type: ignore[attr-defined]
    qtbot.wait(300)  # type: ignore[attr-defined]  # the overlays map
    x0, y0 = origin.x() + 5, origin.y() + 5
    x1, y1 = origin.x() + 635, origin.y() + 475
    for step in (
        ["mousemove", str(x0), str(y0)],
        ["mousedown", "1"],
        ["mousemove", str((x0 + x1) // 2), str((y0 + y1) // 2)],
        ["mousemove", str(x1), str(y1)],
        ["mouseup", "1"],
    ):
        subprocess.run(["xdotool", *step], check=True)
        qtbot.wait(50)  # type: ignore[attr-defined]
    qtbot.waitUntil(lambda: bool(tray.recent), timeout=30_000)  # type: ignore[attr-defined]
    truth = " ".join(SAMPLE.with_suffix(".gt.txt").read_text().split())
    got = " ".join(xclip_text(qtbot).split())
    assert Levenshtein.normalized_distance(got, truth) <= MAX_CER, got
    assert tray.shown and tray.shown[-1][0] == "Copied to the clipboard"  # type: ignore[attr-defined]
    assert tray.recent and "quick brown" in tray.recent[0].result.markdown  # type: ignore[attr-defined]
    label.close()


def test_gui_thread_stays_responsive_while_an_engine_works(
    qapp: object, qtbot: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    from PySide6.QtCore import QTimer

    from textdrop.desktop.bridge import JobBridge
    from textdrop.engine.jobs import JobQueue

    monkeypatch.setitem(base.BUILTIN_ENGINES, "slow", "tests.helpers.fake_engines:SlowEngine")
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
    assert labels[0].startswith("Capture region\tCtrl+Alt+T")
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
    assert {"auto", "rapid"} <= set(choices) and choices["auto"].isChecked()
    choices["rapid"].trigger()
    assert load_settings().engine == "rapid" and tray.bridge.engine == "rapid"  # type: ignore[attr-defined]
    assert any(a.text().startswith("Engine: rapid") for a in tray.menu.actions())  # type: ignore[attr-defined]


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
