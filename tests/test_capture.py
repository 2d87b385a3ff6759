"""Screen capture: frozen screens, the drag overlay (per screen, HiDPI), the global hotkey, the portal.

The GUI tests run on the Xvfb display of the ``x_display`` fixture: X screen 0 is 1280×800 and X screen 1
is 1024×768, which Qt reports as two screens, each at (0, 0) of its own virtual desktop. A real scan is
shown on screen 0 and a four-colour pattern on screen 1, so a capture can be traced to the screen (and the
pixels) it came from. HiDPI runs in a child process, because Qt reads its scale factors only at start.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import threading
import time
import types
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtCore import QPoint, QRect, QRectF, Qt
from PySide6.QtGui import QColor, QGuiApplication, QImage, QPainter, QPaintEvent, QPixmap
from PySide6.QtWidgets import QLabel, QWidget

from tests.helpers.display import screenshots_dir
from textdrop.desktop.bridge import png_bytes
from textdrop.desktop.capture import hotkey as hotkey_module
from textdrop.desktop.capture import overlay as overlay_module
from textdrop.desktop.capture import portal, screens, winhotkey, xgrab
from textdrop.desktop.capture.hotkey import HotkeyListener, display_hotkey, parse_hotkey
from textdrop.desktop.capture.overlay import CaptureSession, Overlay, region_to_device
from textdrop.desktop.capture.screens import Shot, split_desktop

ROOT = Path(__file__).resolve().parents[1]
SCAN = ROOT / "assets" / "samples" / "tess_phototest.tif"
SCAN_AT = QPoint(50, 60)
"""Where the scan's window sits on screen 0 (logical pixels)."""
PATTERN = QRect(100, 100, 400, 300)
"""Where the pattern's window sits on screen 1 (logical pixels); its quadrants meet at (300, 250)."""
RED, GREEN, BLUE, YELLOW = QColor(200, 30, 40), QColor(30, 160, 60), QColor(40, 60, 200), QColor(230, 200, 30)


class Pattern(QWidget):
    """Four solid quadrants: red top left, green top right, blue bottom left, yellow bottom right."""

    def paintEvent(self, event: QPaintEvent) -> None:
        painter = QPainter(self)
        w, h = self.width(), self.height()
        painter.fillRect(QRectF(0, 0, w / 2, h / 2), RED)
        painter.fillRect(QRectF(w / 2, 0, w - w / 2, h / 2), GREEN)
        painter.fillRect(QRectF(0, h / 2, w / 2, h - h / 2), BLUE)
        painter.fillRect(QRectF(w / 2, h / 2, w - w / 2, h - h / 2), YELLOW)
        painter.end()


def _screens() -> tuple[Any, Any]:
    """Qt's screens for X screen 0 (the larger) and X screen 1."""
    found = sorted(QGuiApplication.screens(), key=lambda s: -s.geometry().width())
    if len(found) < 2:
        pytest.skip("needs the two-screen Xvfb display")
    return found[0], found[1]


def _show_on(widget: QWidget, screen: Any, geometry: QRect) -> QWidget:
    widget.setWindowFlags(Qt.WindowType.FramelessWindowHint | Qt.WindowType.Window)
    widget.setScreen(screen)
    widget.setGeometry(geometry)
    widget.show()
    return widget


def _rgb(image: QImage) -> QImage:
    return image.convertToFormat(QImage.Format.Format_RGB32)


def _color(image: QImage, x: int, y: int) -> QColor:
    return QColor(image.pixel(x, y))


def _drag(overlay: QWidget, start: QPoint, end: QPoint) -> None:
    from PySide6.QtTest import QTest

    QTest.mousePress(overlay, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, start)
    middle = QPoint((start.x() + end.x()) // 2, (start.y() + end.y()) // 2)
    QTest.mouseMove(overlay, middle)
    QTest.mouseMove(overlay, end)
    QTest.mouseRelease(overlay, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, end)


def _overlay_on(session: CaptureSession, screen: Any) -> Overlay:
    return next(o for o in session.overlays if o.shot.screen == screen)


def _closed(overlays: tuple[Overlay, ...]) -> bool:
    import shiboken6

    return all(not shiboken6.isValid(o) or not o.isVisible() for o in overlays)


@pytest.fixture
def desktop(qtbot: Any) -> Iterator[tuple[Any, Any]]:
    """The scan on screen 0 at :data:`SCAN_AT`, the pattern on screen 1 at :data:`PATTERN`."""
    screen0, screen1 = _screens()
    label = QLabel()
    label.setPixmap(QPixmap(str(SCAN)))
    pattern = Pattern()
    for widget, screen, geometry in (
        (label, screen0, QRect(SCAN_AT, label.pixmap().size())),
        (pattern, screen1, PATTERN),
    ):
        qtbot.addWidget(widget)
        with qtbot.waitExposed(widget):
            _show_on(widget, screen, geometry)
    qtbot.wait(150)  # let the X server get the painted pixels
    yield screen0, screen1
    label.close()
    pattern.close()


@pytest.fixture
def session(qtbot: Any) -> Iterator[CaptureSession]:
    capture = CaptureSession()
    yield capture
    capture.cancel()


# --- screens ---------------------------------------------------------------------------------------


@pytest.mark.gui
def test_grab_screens_freezes_each_screen_at_its_size(desktop: tuple[Any, Any]) -> None:
    screen0, screen1 = desktop
    shots = screens.grab_screens()
    assert len(shots) == 2
    first = next(shot for shot in shots if shot.screen == screen0)
    second = next(shot for shot in shots if shot.screen == screen1)
    assert (first.image.width(), first.image.height()) == (1280, 800)
    assert (second.image.width(), second.image.height()) == (1024, 768)
    assert first.geometry == screen0.geometry() and first.device_pixel_ratio == 1.0
    scan = _rgb(QImage(str(SCAN)))
    assert _rgb(first.image.copy(QRect(SCAN_AT, scan.size()))) == scan  # the real scan, pixel for pixel
    assert _color(second.image, 150, 150) == RED and _color(second.image, 450, 350) == YELLOW


def test_split_desktop_cuts_the_portal_image_per_screen() -> None:
    class FakeScreen:
        def __init__(self, geometry: QRect, dpr: float) -> None:
            self._geometry, self._dpr = geometry, dpr

        def geometry(self) -> QRect:
            return self._geometry

        def virtualGeometry(self) -> QRect:
            return QRect(0, 0, 2304, 800)

        def devicePixelRatio(self) -> float:
            return self._dpr

    left, right = FakeScreen(QRect(0, 0, 1280, 800), 2.0), FakeScreen(QRect(1280, 0, 1024, 768), 2.0)
    desktop = QImage(4608, 1600, QImage.Format.Format_RGB32)  # the whole desktop at scale 2
    desktop.fill(RED)
    QPainter(desktop).fillRect(QRect(2560, 0, 2048, 1600), BLUE)
    shots = split_desktop(desktop, [left, right])
    assert [shot.image.size().toTuple() for shot in shots] == [(2560, 1600), (2048, 1536)]
    assert shots[0].geometry == QRect(0, 0, 1280, 800) and shots[1].geometry == QRect(1280, 0, 1024, 768)
    assert {_color(shots[0].image, x, 5).name() for x in (0, 2559)} == {RED.name()}
    assert {_color(shots[1].image, x, 5).name() for x in (0, 2047)} == {BLUE.name()}
    assert shots[1].scale == (2.0, 2.0)


def test_to_png_round_trips() -> None:
    image = QImage(30, 20, QImage.Format.Format_RGB32)
    image.fill(GREEN)
    data = png_bytes(image)
    assert data.startswith(b"\x89PNG")
    back = QImage.fromData(data)
    assert back.size() == image.size() and _color(back, 29, 19) == GREEN


# --- region_to_device (pure) -----------------------------------------------------------------------


def _shot(geometry: QRect, image_size: tuple[int, int], dpr: float) -> Shot:
    return Shot(
        screen=None,
        geometry=geometry,
        image=QImage(*image_size, QImage.Format.Format_RGB32),
        device_pixel_ratio=dpr,
    )  # type: ignore[arg-type]


def test_region_to_device_scales_by_the_screens_dpr() -> None:
    shot = _shot(QRect(1280, 0, 640, 400), (1280, 800), 2.0)  # a 200 % screen right of another one
    assert region_to_device(shot, QRect(10, 20, 100, 50)) == QRect(20, 40, 200, 100)
    assert region_to_device(shot, QRect(0, 0, 640, 400)) == QRect(0, 0, 1280, 800)


def test_region_to_device_follows_the_grabbed_image_not_the_reported_dpr() -> None:
    shot = _shot(QRect(0, 0, 640, 400), (1280, 800), 1.0)  # Qt said DPR 1 but grabbed twice the size
    assert region_to_device(shot, QRect(10, 20, 100, 50)) == QRect(20, 40, 200, 100)


def test_region_to_device_rounds_outwards_and_clips_to_the_image() -> None:
    shot = _shot(QRect(0, 0, 800, 600), (1000, 750), 1.25)  # 125 %: fractional device pixels
    assert region_to_device(shot, QRectF(1, 1, 3, 3)) == QRect(1, 1, 4, 4)  # 1.25..5.0 → pixels 1..4
    assert region_to_device(shot, QRect(790, 590, 50, 50)) == QRect(987, 737, 13, 13)
    assert region_to_device(shot, QRect(900, 700, 10, 10)).isEmpty()


# --- the overlay -------------------------------------------------------------------------------------


@pytest.mark.gui
def test_overlays_cover_each_screen(
    x_display: Any, desktop: tuple[Any, Any], session: CaptureSession
) -> None:
    # Never widget.screen() here: PySide 6.12 gives the QScreen it returns to the widget, and deleting the
    # widget then kills that QScreen's wrapper for everyone. The X server says where the windows are.
    assert session.start()
    assert not session.start()  # a second hotkey press while one runs stacks nothing
    overlays = session.overlays
    assert len(overlays) == 2
    for overlay in overlays:
        assert overlay.isVisible()
        assert overlay.geometry() == overlay.shot.screen.geometry()
        flags = overlay.windowFlags()
        assert flags & Qt.WindowType.FramelessWindowHint and flags & Qt.WindowType.WindowStaysOnTopHint
        assert overlay.cursor().shape() == Qt.CursorShape.CrossCursor
    for index, screen in enumerate(desktop):
        found = subprocess.run(
            ["xdotool", "search", "--screen", str(index), "--name", "^textdrop capture$"],
            env=x_display.env(),
            capture_output=True,
            text=True,
        ).stdout.split()
        assert [int(window) for window in found] == [int(_overlay_on(session, screen).winId())]
    shown = _overlay_on(session, desktop[1]).grab().toImage()
    frozen = _color(_overlay_on(session, desktop[1]).shot.image, 150, 150)
    dimmed = _color(shown, 150, 150)
    assert dimmed.red() < frozen.red() - 30  # the frozen image, dimmed


@pytest.mark.gui
def test_drag_on_screen_1_captures_from_screen_1(
    qtbot: Any, desktop: tuple[Any, Any], session: CaptureSession
) -> None:
    session.start()
    overlays = session.overlays
    overlay = _overlay_on(session, desktop[1])
    with (
        qtbot.assertNotEmitted(session.cancelled),
        qtbot.waitSignal(session.captured, timeout=2000) as blocker,
    ):
        _drag(overlay, QPoint(150, 130), QPoint(450, 330))
    image: QImage = blocker.args[0]
    assert image.size().toTuple() == (300, 200)
    assert _rgb(image) == _rgb(overlay.shot.image.copy(QRect(150, 130, 300, 200)))
    assert [_color(image, x, y) for x, y in ((0, 0), (299, 0), (0, 199), (299, 199))] == [
        RED,
        GREEN,
        BLUE,
        YELLOW,
    ]
    assert _closed(overlays) and not session.active


@pytest.mark.gui
def test_drag_on_screen_0_captures_the_scan(
    qtbot: Any, desktop: tuple[Any, Any], session: CaptureSession
) -> None:
    session.start()
    overlay = _overlay_on(session, desktop[0])
    with qtbot.waitSignal(session.captured, timeout=2000) as blocker:
        _drag(overlay, SCAN_AT + QPoint(400, 280), SCAN_AT + QPoint(100, 80))  # bottom right to top left
    image: QImage = blocker.args[0]
    assert image.size().toTuple() == (300, 200)
    assert _rgb(image) == _rgb(QImage(str(SCAN)).copy(QRect(100, 80, 300, 200)))  # the scan's own pixels
    assert _color(image, 0, 0) != RED  # not from screen 1


@pytest.mark.gui
def test_drag_past_the_edge_stops_at_the_edge(
    qtbot: Any, desktop: tuple[Any, Any], session: CaptureSession
) -> None:
    session.start()
    overlay = _overlay_on(session, desktop[1])
    with qtbot.waitSignal(session.captured, timeout=2000) as blocker:
        _drag(overlay, QPoint(1000, 700), QPoint(3000, 2000))  # the pointer went on to another screen
    assert blocker.args[0].size().toTuple() == (24, 68)


@pytest.mark.gui
@pytest.mark.parametrize("how", ["escape", "escape mid-drag", "right click", "tiny drag"])
def test_cancel(qtbot: Any, desktop: tuple[Any, Any], session: CaptureSession, how: str) -> None:
    from PySide6.QtTest import QTest

    session.start()
    overlays = session.overlays
    overlay = _overlay_on(session, desktop[0])
    with qtbot.assertNotEmitted(session.captured), qtbot.waitSignal(session.cancelled, timeout=2000):
        if how == "escape":
            QTest.keyClick(overlay, Qt.Key.Key_Escape)
        elif how == "escape mid-drag":
            QTest.mousePress(
                overlay, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, QPoint(10, 10)
            )
            QTest.mouseMove(overlay, QPoint(300, 300))
            QTest.keyClick(overlay, Qt.Key.Key_Escape)
        elif how == "right click":
            QTest.mouseClick(
                overlay, Qt.MouseButton.RightButton, Qt.KeyboardModifier.NoModifier, QPoint(50, 50)
            )
        else:
            _drag(overlay, QPoint(200, 200), QPoint(203, 260))  # 3 px wide
    assert _closed(overlays) and not session.active and session.overlays == ()
    assert session.start()  # and the session can be used again


@pytest.mark.gui
def test_real_pointer_and_keyboard(
    qtbot: Any, x_display: Any, desktop: tuple[Any, Any], session: CaptureSession
) -> None:
    """Through the X server (xdotool): the windows are where they should be and get the input."""

    def xdotool(*args: str) -> None:
        subprocess.run(["xdotool", *args], env=x_display.env(), check=True)
        qtbot.wait(50)

    session.start()
    qtbot.wait(200)  # the overlays map
    with qtbot.waitSignal(session.captured, timeout=3000) as blocker:
        xdotool("mousemove", "--screen", "1", "150", "130")
        xdotool("mousedown", "1")
        xdotool("mousemove", "--screen", "1", "300", "230")
        xdotool("mousemove", "--screen", "1", "450", "330")
        xdotool("mouseup", "1")
    image = blocker.args[0]
    assert image.size().toTuple() == (300, 200)
    assert [_color(image, x, y) for x, y in ((0, 0), (299, 0), (0, 199), (299, 199))] == [
        RED,
        GREEN,
        BLUE,
        YELLOW,
    ]
    session.start()
    qtbot.wait(200)
    with qtbot.assertNotEmitted(session.captured), qtbot.waitSignal(session.cancelled, timeout=3000):
        xdotool("key", "Escape")  # reaches the overlay: it holds the keyboard while shown
    assert not session.active


@pytest.mark.gui
def test_the_overlay_says_what_to_do_until_the_drag_starts(
    qtbot: Any, desktop: tuple[Any, Any], tmp_path: Path
) -> None:
    from PySide6.QtTest import QTest

    session = CaptureSession(hotkey="Ctrl+Alt+O")
    try:
        session.start()
        overlay = _overlay_on(session, desktop[1])
        assert overlay.hint() == (
            "Drag over the text to read it  ·  Esc or right click cancels  ·  Capture hotkey: Ctrl+Alt+O"
        )
        before = overlay.grab().toImage()
        assert before.save(str(screenshots_dir(tmp_path) / "capture_overlay_hint.png"))

        def white_in_band(image: QImage) -> int:  # the hint's white text, in the band at the top
            return sum(
                _color(image, x, y).lightness() > 200
                for x in range(0, image.width(), 2)
                for y in range(24, 60, 2)
            )

        assert white_in_band(before) > 50
        QTest.mousePress(overlay, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, QPoint(100, 200))
        QTest.mouseMove(overlay, QPoint(300, 400))
        assert white_in_band(overlay.grab().toImage()) == 0  # gone while dragging
    finally:
        session.cancel()


@pytest.mark.gui
def test_rubber_band_screenshot(
    qtbot: Any, desktop: tuple[Any, Any], session: CaptureSession, tmp_path: Path
) -> None:
    from PySide6.QtTest import QTest

    session.start()
    overlay = _overlay_on(session, desktop[0])
    start, end = SCAN_AT + QPoint(30, 40), SCAN_AT + QPoint(420, 230)
    QTest.mousePress(overlay, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, start)
    QTest.mouseMove(overlay, end)
    shown = overlay.grab().toImage()
    path = screenshots_dir(tmp_path) / "capture_overlay_rubber_band.png"
    assert shown.save(str(path))
    frozen = overlay.shot.image
    inside, outside = QPoint(200, 200), QPoint(600, 450)  # both on the scan's white paper
    assert _color(shown, inside.x(), inside.y()) == _color(frozen, inside.x(), inside.y())  # lit
    assert (
        _color(shown, outside.x(), outside.y()).lightness()
        < _color(frozen, outside.x(), outside.y()).lightness()
    )
    border = _color(shown, start.x() - 1, 200)
    assert border == overlay_module.ACCENT
    assert path.stat().st_size > 10_000


# --- HiDPI, in a child process (Qt reads its scale factors at start) ----------------------------------

HIDPI_CASES = {
    # QT_SCALE_FACTOR=2: every screen at DPR 2, logical sizes halved. Pattern at logical (50, 50, 200, 150)
    # on screen 1 = device (100, 100, 400, 300); a drag from logical (60, 60) to (160, 130) = device
    # (120, 120, 200, 140), across the quadrants' meeting point at device (300, 250).
    "hidpi": ({"QT_SCALE_FACTOR": "2"}, 1, (60, 60, 160, 130), (120, 120, 200, 140)),
    # Mixed: screen 0 at 150 % (Qt on these X screens reports DPR 1 but grabs 1280×800 for 853×533 logical
    # pixels: the "image ≠ geometry × DPR" case, at scale 1280/853 = 1.5006 by 800/533 = 1.5009, so logical
    # 200 and 180 end inside device pixels 300 and 270: rounded outwards), screen 1 at 100 %.
    "mixed screen 0": ({"QT_SCREEN_SCALE_FACTORS": "1.5;1"}, 0, (100, 100, 200, 180), (150, 150, 151, 121)),
    "mixed screen 1": ({"QT_SCREEN_SCALE_FACTORS": "1.5;1"}, 1, (100, 100, 200, 180), (100, 100, 100, 80)),
}


def _child_capture() -> None:
    """Run in a child process: show the pattern, capture on one screen, print what came out as JSON."""
    from PySide6.QtWidgets import QApplication

    screen_index, drag, expected = json.loads(sys.argv[1])
    app = QApplication([])
    qt_screens = QGuiApplication.screens()  # X screen 0, X screen 1
    pattern = _show_on(Pattern(), qt_screens[1], QRect(50, 50, 200, 150))
    deadline = time.monotonic() + 2
    while time.monotonic() < deadline:
        app.processEvents()
        time.sleep(0.01)
    session = CaptureSession()
    results: list[QImage] = []
    session.captured.connect(results.append)
    session.start()
    overlay = _overlay_on(session, qt_screens[screen_index])
    shot = overlay.shot
    shown = overlay.grab().toImage()  # what the overlay draws, in device pixels
    sx, sy = shot.scale  # the red and the yellow quadrant's middle (pattern at logical 50, 50, 200, 150)
    points = [(round(100 * sx), round(87 * sy)), (round(200 * sx), round(162 * sy))]
    painted = [[_color(image, x, y).getRgb()[:3] for image in (shown, shot.image)] for x, y in points]
    _drag(overlay, QPoint(drag[0], drag[1]), QPoint(drag[2], drag[3]))
    app.processEvents()
    image = results[0]
    corners = [
        (0, 0),
        (image.width() - 1, 0),
        (0, image.height() - 1),
        (image.width() - 1, image.height() - 1),
    ]
    report = {
        "geometry": shot.geometry.getRect(),
        "dpr": shot.device_pixel_ratio,
        "image": shot.image.size().toTuple(),
        "captured": image.size().toTuple(),
        "matches_frozen": _rgb(image) == _rgb(shot.image.copy(QRect(*expected))),
        "corners": [_color(image, x, y).name() for x, y in corners],
        "painted": painted,
    }
    pattern.close()
    print("RESULT " + json.dumps(report), flush=True)


@pytest.mark.gui
@pytest.mark.parametrize("case", list(HIDPI_CASES))
def test_hidpi_capture_in_device_pixels(x_display: Any, case: str) -> None:
    env_extra, screen_index, drag, expected = HIDPI_CASES[case]
    code = "import tests.test_capture as t; t._child_capture()"
    scaling = ("QT_SCALE_FACTOR", "QT_SCREEN_SCALE_FACTORS", "QT_ENABLE_HIGHDPI_SCALING")
    env = {key: value for key, value in x_display.env().items() if key not in scaling}
    env.update(env_extra, PYTHONPATH=str(ROOT))
    done = subprocess.run(
        [sys.executable, "-c", code, json.dumps([screen_index, drag, expected])],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
    assert lines, done.stdout + done.stderr
    report = json.loads(lines[0].removeprefix("RESULT "))
    assert report["captured"] == [expected[2], expected[3]]
    assert report["matches_frozen"], report
    if case == "hidpi":
        assert (
            report["dpr"] == 2.0 and report["geometry"] == [0, 0, 512, 384] and report["image"] == [1024, 768]
        )
    if case == "mixed screen 0":
        assert report["geometry"][2:] == [853, 533] and report["image"] == [1280, 800]
    if case == "mixed screen 1":
        assert report["geometry"][2:] == [1024, 768] and report["image"] == [1024, 768]
    if case != "mixed screen 0":  # the pattern is on screen 1: its four quadrants meet inside the region
        assert report["corners"] == [c.name() for c in (RED, GREEN, BLUE, YELLOW)]
        keep = 1 - overlay_module.DIM.alpha() / 255  # the overlay shows the frozen pixels, dimmed, unmoved
        for shown, frozen in report["painted"]:
            assert frozen in ([*RED.getRgb()[:3]], [*YELLOW.getRgb()[:3]])
            assert all(abs(s - f * keep) <= 2 for s, f in zip(shown, frozen, strict=True)), (shown, frozen)


# --- the portal, on a private D-Bus --------------------------------------------------------------------

_BUS_CONFIG = """<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>session</type>
  <listen>unix:dir={dir}</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow send_destination="*" eavesdrop="true"/>
    <allow eavesdrop="true"/>
    <allow own="*"/>
  </policy>
</busconfig>
"""


@pytest.fixture
def private_bus(qapp: Any, tmp_path: Path) -> Iterator[Any]:
    """A private D-Bus daemon without service activation; yields a factory of named connections to it."""
    from PySide6.QtDBus import QDBusConnection

    daemon = shutil.which("dbus-daemon")
    if daemon is None:
        pytest.skip("needs dbus-daemon (Debian package dbus-daemon)")
    config = tmp_path / "bus.conf"
    config.write_text(_BUS_CONFIG.format(dir=tmp_path), encoding="utf-8")
    process = subprocess.Popen(
        [daemon, f"--config-file={config}", "--nofork", "--print-address"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    address = process.stdout.readline().strip()  # type: ignore[union-attr]
    names: list[str] = []

    def connect(role: str) -> Any:
        name = f"textdrop-test-{role}-{len(names)}-{time.monotonic_ns()}"
        names.append(name)
        connection = QDBusConnection.connectToBus(address, name)
        assert connection.isConnected(), connection.lastError().message()
        return connection

    yield connect
    for name in names:
        QDBusConnection.disconnectFromBus(name)
    process.terminate()
    process.wait(5)


def _fake_portal(service_bus: Any, code: int, uri: str, answer: bool = True) -> Any:
    """Serve org.freedesktop.portal.Screenshot on ``service_bus`` the way xdg-desktop-portal does."""
    from PySide6.QtCore import ClassInfo, QObject, QTimer, Signal, Slot
    from PySide6.QtDBus import QDBusConnection, QDBusMessage, QDBusObjectPath

    @ClassInfo({"D-Bus Interface": portal.REQUEST_INTERFACE})
    class Request(QObject):
        Response = Signal("uint", "QVariantMap")

    class Screenshot(QObject):
        def __init__(self) -> None:
            super().__init__()
            self.calls: list[tuple[str, dict[str, Any]]] = []
            self.requests: list[Request] = []

        @Slot(str, "QVariantMap", QDBusMessage, result=QDBusObjectPath)
        def Screenshot(self, parent_window: str, options: dict[str, Any], message: Any) -> Any:
            self.calls.append((parent_window, dict(options)))
            sender = message.service().lstrip(":").replace(".", "_")
            handle = f"{portal.REQUEST_PREFIX}/{sender}/{options['handle_token']}"
            request = Request()
            self.requests.append(request)
            service_bus.registerObject(
                handle, portal.REQUEST_INTERFACE, request, QDBusConnection.RegisterOption.ExportAllSignals
            )
            if answer:
                QTimer.singleShot(30, lambda: request.Response.emit(code, {"uri": uri}))
            return QDBusObjectPath(handle)

    fake = Screenshot()
    options = QDBusConnection.RegisterOption.ExportAllSlots
    assert service_bus.registerObject(portal.PATH, portal.SCREENSHOT_INTERFACE, fake, options)
    assert service_bus.registerService(portal.SERVICE)
    return fake


@pytest.mark.gui
def test_portal_screenshot_round_trip(private_bus: Any, tmp_path: Path) -> None:
    saved = tmp_path / "Screenshot from the portal.png"
    desktop = QImage(1280, 800, QImage.Format.Format_RGB32)
    desktop.fill(BLUE)
    assert desktop.save(str(saved))
    fake = _fake_portal(private_bus("portal"), 0, saved.as_uri())
    image = portal.grab_desktop(private_bus("client"), timeout_s=5)
    assert image.size().toTuple() == (1280, 800) and _color(image, 640, 400) == BLUE
    assert fake.calls[0][0] == "" and fake.calls[0][1]["interactive"] is False
    assert fake.calls[0][1]["handle_token"].startswith("textdrop_")
    assert not saved.exists()  # the portal's file is removed once read


@pytest.mark.gui
@pytest.mark.parametrize(
    ("code", "answer", "message"),
    [(2, True, "refused"), (1, True, "cancelled"), (0, False, "did not answer within 0.5 s")],
)
def test_portal_refusal_and_silence(private_bus: Any, code: int, answer: bool, message: str) -> None:
    fake = _fake_portal(private_bus("portal"), code, "", answer=answer)
    with pytest.raises(portal.PortalError, match=message):
        portal.grab_desktop(private_bus("client"), timeout_s=0.5)
    assert len(fake.calls) == 1


@pytest.mark.gui
def test_portal_missing(private_bus: Any) -> None:
    with pytest.raises(portal.PortalError, match=r"No screenshot portal answered.*xdg-desktop-portal"):
        portal.grab_desktop(private_bus("client"), timeout_s=5)


@pytest.mark.gui
def test_portal_without_a_session_bus(qapp: Any) -> None:
    from PySide6.QtDBus import QDBusConnection

    dead = QDBusConnection.connectToBus("unix:path=/nonexistent/textdrop-test-bus", "textdrop-test-dead")
    try:
        with pytest.raises(portal.PortalError, match="no D-Bus session bus") as caught:
            portal.grab_desktop(dead, timeout_s=2)
    finally:
        QDBusConnection.disconnectFromBus("textdrop-test-dead")
    assert isinstance(caught.value, portal.TextdropError)


@pytest.mark.gui
def test_session_on_wayland_uses_the_portal(
    qtbot: Any, desktop: tuple[Any, Any], private_bus: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    screen0 = desktop[0]
    saved = tmp_path / "portal.png"
    image = QImage(1280, 800, QImage.Format.Format_RGB32)
    image.fill(GREEN)
    QPainter(image).fillRect(QRect(0, 0, 100, 100), RED)
    assert image.save(str(saved))
    fake = _fake_portal(private_bus("portal"), 0, saved.as_uri())
    client = private_bus("client")
    monkeypatch.setattr(screens, "is_wayland", lambda: True)
    monkeypatch.setattr(portal, "session_bus", lambda: client)
    session = CaptureSession()
    assert session.start()
    assert session.active and not session.overlays  # waiting for the portal; nothing blocked
    qtbot.waitUntil(lambda: len(session.overlays) == 2, timeout=5000)
    overlay = _overlay_on(session, screen0)
    assert _rgb(overlay.shot.image) == _rgb(image)
    with qtbot.waitSignal(session.captured, timeout=2000) as blocker:
        _drag(overlay, QPoint(50, 50), QPoint(150, 150))
    captured = blocker.args[0]
    assert captured.size().toTuple() == (100, 100)
    assert _color(captured, 10, 10) == RED and _color(captured, 90, 90) == GREEN
    assert len(fake.calls) == 1


@pytest.mark.gui
def test_session_reports_a_failed_portal(qtbot: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    from PySide6.QtDBus import QDBusConnection

    dead = QDBusConnection.connectToBus("unix:path=/nonexistent/textdrop-test-bus", "textdrop-test-dead2")
    monkeypatch.setattr(screens, "is_wayland", lambda: True)
    monkeypatch.setattr(portal, "session_bus", lambda: dead)
    session = CaptureSession()
    try:
        with qtbot.waitSignal(session.failed, timeout=2000) as blocker:
            session.start()
    finally:
        QDBusConnection.disconnectFromBus("textdrop-test-dead2")
    assert "session bus" in blocker.args[0]
    assert not session.overlays and not session.active


# --- the hotkey ----------------------------------------------------------------------------------------


@pytest.mark.gui
def test_hotkey_fires_on_the_gui_thread(qtbot: Any, x_display: Any) -> None:
    before = set(threading.enumerate())
    listener = HotkeyListener()
    assert HotkeyListener.available() == (True, "")
    assert listener.start("<Alt>+<ctrl>+T"), listener.error
    assert listener.hotkey == "<ctrl>+<alt>+t" and listener.running
    threads: list[threading.Thread] = []
    listener.activated.connect(lambda: threads.append(threading.current_thread()))
    try:
        with qtbot.waitSignal(listener.activated, timeout=5000):
            subprocess.run(["xdotool", "key", "ctrl+alt+t"], env=x_display.env(), check=True)
        assert threads == [threading.main_thread()]  # queued from the grab's thread to the GUI thread
        with qtbot.assertNotEmitted(listener.activated, wait=500):
            subprocess.run(["xdotool", "key", "ctrl+alt+y"], env=x_display.env(), check=True)
    finally:
        listener.stop()
    assert not listener.running and listener.hotkey is None
    assert set(threading.enumerate()) - before == set()  # the grab's thread has ended
    with qtbot.assertNotEmitted(listener.activated, wait=500):
        subprocess.run(["xdotool", "key", "ctrl+alt+t"], env=x_display.env(), check=True)


@pytest.mark.gui
def test_hotkey_start_refuses_a_bad_hotkey(qapp: Any) -> None:
    listener = HotkeyListener()
    assert not listener.start("<ctrl>+<bogus>+t")
    assert "<bogus>" in listener.error and not listener.running


@pytest.mark.gui
def test_hotkey_unavailable_on_wayland_without_a_session_bus(
    qapp: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(hotkey_module, "is_wayland", lambda: True)
    monkeypatch.setenv("DBUS_SESSION_BUS_ADDRESS", f"unix:path={tmp_path / 'no-bus'}")
    ok, message = HotkeyListener.available()
    assert not ok and "Wayland" in message and "no D-Bus session bus" in message
    assert "`textdrop capture`" in message
    listener = HotkeyListener()
    assert not listener.start("<ctrl>+<alt>+t") and listener.error == message


class KeyRecorder:
    """A focused Qt window that records the keys it receives (what the focused application would see),
    modifiers left out."""

    def __init__(self, qtbot: Any) -> None:
        from PySide6.QtWidgets import QLineEdit

        modifiers = {
            Qt.Key.Key_Control,
            Qt.Key.Key_Alt,
            Qt.Key.Key_Shift,
            Qt.Key.Key_Meta,
            Qt.Key.Key_NumLock,
        }
        self.keys: list[Qt.Key] = []
        self.widget = QLineEdit()
        self.widget.keyPressEvent = lambda event: (  # type: ignore[method-assign]
            None if event.key() in modifiers else self.keys.append(Qt.Key(event.key()))
        )
        self.widget.setWindowTitle("focused application")
        self.widget.show()
        qtbot.waitExposed(self.widget)
        self.widget.activateWindow()
        self.widget.setFocus()
        qtbot.waitUntil(self.widget.hasFocus, timeout=5000)


@pytest.mark.gui
def test_the_focused_window_does_not_receive_the_hotkey(qtbot: Any, x_display: Any) -> None:
    def key(*keys: str) -> None:
        subprocess.run(["xdotool", "key", *keys], env=x_display.env(), check=True)

    recorder = KeyRecorder(qtbot)
    listener = HotkeyListener()
    assert listener.start("Ctrl+Alt+O"), listener.error  # the notation menus show
    try:
        key("ctrl+alt+p")
        qtbot.waitUntil(lambda: len(recorder.keys) == 1, timeout=5000)  # the window has the keyboard focus
        with qtbot.waitSignal(listener.activated, timeout=5000):
            key("ctrl+alt+o")
        key("ctrl+alt+p")  # keys arrive in order: once this one is there, the O would have been
        qtbot.waitUntil(lambda: len(recorder.keys) >= 2, timeout=5000)
        with qtbot.waitSignal(listener.activated, timeout=5000):  # NumLock on: still grabbed
            key("Num_Lock", "ctrl+alt+o", "Num_Lock")
        key("ctrl+alt+p")
        qtbot.waitUntil(lambda: len(recorder.keys) >= 3, timeout=5000)
    finally:
        listener.stop()
    assert recorder.keys == [Qt.Key.Key_P] * 3
    recorder.widget.close()


@pytest.mark.gui
def test_a_hotkey_held_by_another_program_is_refused(qapp: Any, x_display: Any) -> None:
    from Xlib import XK, X
    from Xlib import display as xdisplay

    other = xdisplay.Display(x_display.name)
    keycode = other.keysym_to_keycode(XK.string_to_keysym("k"))
    for n in range(other.screen_count()):
        for lock in (0, X.LockMask, X.Mod2Mask, X.LockMask | X.Mod2Mask):
            other.screen(n).root.grab_key(
                keycode, X.ControlMask | X.Mod1Mask | lock, True, X.GrabModeAsync, X.GrabModeAsync
            )
    other.sync()
    try:
        listener = HotkeyListener()
        assert not listener.start("<ctrl>+<alt>+k")
        assert "Another program already uses this hotkey" in listener.error and not listener.running
        assert listener.start("<ctrl>+<alt>+j"), listener.error  # a free combination still works
        listener.stop()
    finally:
        other.close()


def test_hotkey_unavailable_without_a_display(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(hotkey_module, "is_wayland", lambda: False)
    monkeypatch.setattr(hotkey_module.sys, "platform", "linux")
    monkeypatch.delenv("DISPLAY", raising=False)
    ok, message = HotkeyListener.available()
    assert not ok and "DISPLAY is not set" in message


@pytest.mark.parametrize(
    ("hotkey", "canonical"),
    [
        ("<ctrl>+<alt>+t", "<ctrl>+<alt>+t"),
        (" <Alt>+<Ctrl>+T ", "<ctrl>+<alt>+t"),
        ("<shift>+<ctrl_r>+<alt_l>+2", "<ctrl>+<alt>+<shift>+2"),
        ("<f9>", "<f9>"),
        ("<cmd>+<print_screen>", "<cmd>+<print_screen>"),
        ("<ctrl>++", "<ctrl>++"),
        ("Ctrl+Alt+T", "<ctrl>+<alt>+t"),  # as the menu shows it
        ("Shift+Super+F9", "<shift>+<cmd>+<f9>"),
        ("⌃⌥T", "<ctrl>+<alt>+t"),
        ("⇧⌘2", "<shift>+<cmd>+2"),
        ("Ctrl+Page Up", "<ctrl>+<page_up>"),
    ],
)
def test_parse_hotkey_accepts(hotkey: str, canonical: str) -> None:
    assert parse_hotkey(hotkey) == canonical


@pytest.mark.parametrize(
    ("hotkey", "complaint"),
    [
        ("", "No hotkey given"),
        ("<ctrl>+<alt>+", "ends with '+'"),
        ("<ctrl>+<bogus>+t", "'<bogus>' is not a key pynput knows"),
        ("Ctrl+Hyper+t", "'Hyper' is not a key"),
        ("<ctrl>+<ctrl>+t", "appears twice"),
        ("<ctrl>+<alt>", "needs a key besides the modifiers"),
        ("t", "would fire while you type"),
        ("<shift>+<space>", "would fire while you type"),
    ],
)
def test_parse_hotkey_rejects(hotkey: str, complaint: str) -> None:
    with pytest.raises(ValueError, match=re.escape(complaint)) as caught:
        parse_hotkey(hotkey)
    assert not hotkey or str(caught.value).startswith(repr(hotkey))  # says which hotkey is wrong


@pytest.mark.parametrize(
    ("hotkey", "platform", "shown"),
    [
        ("<ctrl>+<alt>+t", "linux", "Ctrl+Alt+T"),
        ("<ctrl>+<alt>+t", "darwin", "⌃⌥T"),
        ("<alt>+<ctrl>+t", "darwin", "⌃⌥T"),
        ("<cmd>+<shift>+2", "darwin", "⇧⌘2"),
        ("<cmd>+<shift>+s", "win32", "Shift+Win+S"),
        ("<cmd>+<f5>", "linux", "Super+F5"),
        ("<ctrl>+<page_up>", "linux", "Ctrl+Page Up"),
    ],
)
def test_display_hotkey(hotkey: str, platform: str, shown: str) -> None:
    assert display_hotkey(hotkey, platform) == shown
    with pytest.raises(ValueError):
        display_hotkey("<ctrl>+", platform)


# --- the hotkey on Windows, through a stand-in for user32 and kernel32 ------------------------------------


class FakeWin32:
    """user32 and kernel32 as :mod:`textdrop.desktop.capture.winhotkey` calls them: a message queue per
    process (one hotkey thread), ``RegisterHotKey`` that can be refused, and a record of every call."""

    def __init__(self, refuse_with: int = 0) -> None:
        import queue

        self.messages: queue.Queue[tuple[int, int]] = queue.Queue()
        self.calls: list[tuple[object, ...]] = []
        self.refuse_with = refuse_with
        self.thread_ids: list[int] = []

    # kernel32
    def GetCurrentThreadId(self) -> int:
        self.thread_ids.append(threading.get_ident())
        return 4242

    def GetLastError(self) -> int:
        return self.refuse_with

    # user32
    def RegisterHotKey(self, hwnd: object, ident: int, flags: int, vk: int) -> int:
        self.calls.append(("register", ident, flags, vk, threading.get_ident()))
        return 0 if self.refuse_with else 1

    def UnregisterHotKey(self, hwnd: object, ident: int) -> int:
        self.calls.append(("unregister", ident, threading.get_ident()))
        return 1

    def GetMessageW(self, ref: Any, hwnd: object, low: int, high: int) -> int:
        message, wparam = self.messages.get(timeout=10)
        ref._obj.message, ref._obj.wParam = message, wparam
        return 0 if message == winhotkey.WM_QUIT else 1

    def PostThreadMessageW(self, thread_id: int, message: int, wparam: int, lparam: int) -> int:
        self.calls.append(("post", thread_id, message))
        self.messages.put((message, wparam))
        return 1

    def VkKeyScanW(self, char: int) -> int:
        return {ord("+"): 0x1BB, ord("-"): 0xBD}.get(char, -1)  # a US layout: Shift+= is +


def test_windows_hotkey_registers_in_its_thread_fires_and_unregisters() -> None:
    fake = FakeWin32()
    fired: list[int] = []
    hotkey = winhotkey.WinHotKey(
        ["ctrl", "alt"], "o", lambda: fired.append(threading.get_ident()), dlls=(fake, fake)
    )
    hotkey.start()
    (register,) = [call for call in fake.calls if call[0] == "register"]
    flags = winhotkey.MOD_CONTROL | winhotkey.MOD_ALT | winhotkey.MOD_NOREPEAT
    assert register[1:4] == (winhotkey.HOTKEY_ID, flags, 0x4F)  # VK_O
    assert register[4] != threading.get_ident()  # registered by the thread that runs the message loop
    fake.messages.put((winhotkey.WM_HOTKEY, winhotkey.HOTKEY_ID))
    fake.messages.put((winhotkey.WM_HOTKEY, 1))  # another hotkey of the process: not ours
    fake.messages.put((0x0113, winhotkey.HOTKEY_ID))  # WM_TIMER: not a hotkey
    deadline = time.monotonic() + 5
    while fake.messages.qsize() and time.monotonic() < deadline:
        time.sleep(0.01)
    assert hotkey.is_alive()
    hotkey.stop()
    assert fired == [register[4]]  # once, from the hotkey thread
    assert ("post", 4242, winhotkey.WM_QUIT) in fake.calls
    assert fake.calls[-1] == ("unregister", winhotkey.HOTKEY_ID, register[4])
    assert not hotkey.is_alive()


def test_windows_hotkey_held_by_another_program_is_refused() -> None:
    fake = FakeWin32(refuse_with=winhotkey.ERROR_HOTKEY_ALREADY_REGISTERED)
    hotkey = winhotkey.WinHotKey(["ctrl", "alt"], "o", lambda: None, dlls=(fake, fake))
    with pytest.raises(xgrab.GrabError, match="Another program already uses this hotkey"):
        hotkey.start()
    assert not hotkey.is_alive() and not any(call[0] == "unregister" for call in fake.calls)


@pytest.mark.parametrize(
    ("key", "code"),
    [
        ("o", 0x4F),
        ("2", 0x32),
        ("f9", 0x78),
        ("f24", 0x87),
        ("print_screen", 0x2C),
        ("esc", 0x1B),
        ("+", 0xBB),
    ],
)
def test_windows_virtual_keys(key: str, code: int) -> None:
    assert winhotkey.virtual_key(key, FakeWin32()) == code


def test_windows_virtual_key_missing_from_the_layout() -> None:
    with pytest.raises(xgrab.GrabError, match="not on this keyboard layout"):
        winhotkey.virtual_key("é", FakeWin32())


def test_the_listener_uses_register_hotkey_on_windows(qtbot: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    import ctypes

    hotkey_module._pynput_keyboard()  # imported here, with this platform's backend, before the switch
    fake = FakeWin32()
    monkeypatch.setattr(ctypes, "windll", types.SimpleNamespace(user32=fake, kernel32=fake), raising=False)
    monkeypatch.setattr(hotkey_module, "is_wayland", lambda: False)
    monkeypatch.setattr(hotkey_module.sys, "platform", "win32")
    listener = HotkeyListener()
    assert listener.start("Ctrl+Shift+F9"), listener.error
    monkeypatch.undo()  # the rest runs on this platform again; the stand-in DLLs stay with the hotkey
    assert listener.running and listener.hotkey == "<ctrl>+<shift>+<f9>"
    with qtbot.waitSignal(listener.activated, timeout=5000):
        fake.messages.put((winhotkey.WM_HOTKEY, winhotkey.HOTKEY_ID))
    monkeypatch.setattr(ctypes, "windll", types.SimpleNamespace(user32=fake, kernel32=fake), raising=False)
    listener.stop()
    assert not listener.running
    assert [call[0] for call in fake.calls] == ["register", "post", "unregister"]
