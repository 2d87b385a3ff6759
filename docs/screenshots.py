"""Render the tray app's screens as PNGs for the docs: ``make screenshots``.

Starts a virtual 1366×768 X display (Xvfb) with a system tray (trayer), runs the real tray app on it with
a realistic configuration (two watched folders, the embedded engine, a private ``TEXTDROP_HOME``), and
grabs the whole screen for each: the tray menu, the capture overlay (its hint, then mid-drag), the drop
window with the bundled sample scans read, each Settings tab, and a notification; once with the light
palette and once with a dark one (Fusion style), each in a process of its own. Needs the Debian packages
xvfb, trayer and x11-utils.

Writes ``NAME-light.png`` and ``NAME-dark.png`` into ``--out`` (default ``docs/screenshots``).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SCREEN = (1366, 768)
"""The screen size the screenshots show: the most common small laptop screen."""
SAMPLES = ("tess_phototest.tif", "sroie_058.jpg", "tess_8087_054_3B.tif")
"""Bundled scans (``assets/samples``) dropped on the drop window."""


def start_display() -> list[subprocess.Popen[bytes]]:
    """Start Xvfb at :data:`SCREEN` and trayer on a free display; sets ``DISPLAY``; returns the processes."""
    number = next(n for n in range(120, 300) if not Path(f"/tmp/.X11-unix/X{n}").exists())
    name = f":{number}"
    xvfb = subprocess.Popen(
        ["Xvfb", name, "-screen", "0", f"{SCREEN[0]}x{SCREEN[1]}x24", "-nolisten", "tcp"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    os.environ.update(DISPLAY=name, QT_QPA_PLATFORM="xcb")
    os.environ.pop("WAYLAND_DISPLAY", None)
    deadline = time.monotonic() + 10
    while subprocess.run(["xdpyinfo"], capture_output=True).returncode != 0:
        if time.monotonic() > deadline or xvfb.poll() is not None:
            raise SystemExit("Xvfb did not start")
        time.sleep(0.1)
    tray = subprocess.Popen(
        ["trayer", "--edge", "top", "--align", "right", "--widthtype", "pixel", "--width", "120"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    time.sleep(0.5)
    return [tray, xvfb]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "screenshots")
    parser.add_argument("--scheme", choices=("light", "dark"), help="one colour scheme (default: both)")
    args = parser.parse_args()
    if args.scheme is None:  # each scheme in a process of its own: the palette is set before any widget
        for scheme in ("light", "dark"):
            command = [sys.executable, __file__, "--out", str(args.out), "--scheme", scheme]
            if subprocess.run(command, check=False).returncode != 0:
                return 1
        return 0
    missing = [tool for tool in ("Xvfb", "trayer", "xdpyinfo") if shutil.which(tool) is None]
    if missing:
        print(f"needs {', '.join(missing)} (Debian: xvfb trayer x11-utils)", file=sys.stderr)
        return 1
    args.out.mkdir(parents=True, exist_ok=True)
    home = Path(tempfile.mkdtemp(prefix="textdrop-screenshots-"))
    os.environ["TEXTDROP_HOME"] = str(home / "textdrop")
    os.environ["XDG_CONFIG_HOME"] = str(home / "xdg")
    processes = start_display()
    try:
        return Shooter(home, args.out, args.scheme).run()
    finally:
        for process in processes:
            process.terminate()
            process.wait(5)
        shutil.rmtree(home, ignore_errors=True)


def dark_palette() -> object:
    """A dark palette for the Fusion style (what a desktop in dark mode gives Qt apps)."""
    from PySide6.QtGui import QColor, QPalette

    palette = QPalette()
    role = QPalette.ColorRole
    for key, color in {
        role.Window: "#2b2b2b",
        role.WindowText: "#e6e6e6",
        role.Base: "#1e1e1e",
        role.AlternateBase: "#323232",
        role.ToolTipBase: "#3a3a3a",
        role.ToolTipText: "#e6e6e6",
        role.Text: "#e6e6e6",
        role.Button: "#353535",
        role.ButtonText: "#e6e6e6",
        role.BrightText: "#ff6b6b",
        role.Highlight: "#3d8ee9",
        role.HighlightedText: "#ffffff",
        role.PlaceholderText: "#8c8c8c",
        role.Mid: "#5a5a5a",
        role.Link: "#7ab7ff",
    }.items():
        palette.setColor(key, QColor(color))
    palette.setColor(QPalette.ColorGroup.Disabled, role.Text, QColor("#7a7a7a"))
    palette.setColor(QPalette.ColorGroup.Disabled, role.ButtonText, QColor("#7a7a7a"))
    palette.setColor(QPalette.ColorGroup.Disabled, role.WindowText, QColor("#7a7a7a"))
    return palette


class Shooter:
    """Drives the tray app and grabs the screen; one instance per run."""

    def __init__(self, home: Path, out: Path, scheme: str) -> None:
        self.home = home
        self.out = out
        self.scheme = scheme
        self.written: list[Path] = []

    def run(self) -> int:
        from PySide6.QtWidgets import QApplication

        from textdrop.desktop.app import TrayApp, app_icon
        from textdrop.settings import load_settings

        scans, shots = self.home / "Scans", self.home / "Pictures" / "Screenshots"
        scans.mkdir(parents=True)
        shots.mkdir(parents=True)
        config = Path(os.environ["TEXTDROP_HOME"]) / "config" / "config.toml"
        config.parent.mkdir(parents=True)
        config.write_text(
            f'engine = "rapid"\n\n[[folders]]\npath = "{scans}"\n\n[[folders]]\npath = "{shots}"\n'
            "clipboard = true\nnotify = true\n",
            encoding="utf-8",
        )
        self.app = QApplication.instance() or QApplication(["textdrop"])
        self.app.setStyle("Fusion")
        if self.scheme == "dark":
            self.app.setPalette(dark_palette())  # Xvfb has no platform theme to ask for a colour scheme
        self.app.setWindowIcon(app_icon())
        self.app.setQuitOnLastWindowClosed(False)
        self.tray = TrayApp(self.app, load_settings(), watch=True)
        if not self.tray.start():
            print("another textdrop answers on this TEXTDROP_HOME", file=sys.stderr)
            return 1
        try:
            self.wait(lambda: self.tray.queue.loaded.done(), 60)
            self.read_samples()
            self.shoot_all(self.scheme)
        finally:
            self.tray.shutdown()
        for path in self.written:
            print(path)
        return 0

    # -- helpers -------------------------------------------------------------------------------------

    def pause(self, ms: int) -> None:
        from PySide6.QtTest import QTest

        QTest.qWait(ms)

    def wait(self, ready: object, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while not ready():  # type: ignore[operator]
            if time.monotonic() > deadline:
                raise SystemExit(f"timed out waiting for {ready}")
            self.pause(50)

    def grab(self, name: str, scheme: str) -> None:
        """Save the whole screen as ``NAME-SCHEME.png``."""
        from PySide6.QtGui import QGuiApplication

        self.pause(250)
        path = self.out / f"{name}-{scheme}.png"
        if not QGuiApplication.primaryScreen().grabWindow(0).save(str(path)):
            raise SystemExit(f"cannot write {path}")
        self.written.append(path)

    # -- scenes --------------------------------------------------------------------------------------

    def read_samples(self) -> None:
        """Drop the sample scans on the drop window and wait until they are read (copies them first, so
        their sidecars go to the temporary folder)."""
        copies = []
        for name in SAMPLES:
            target = self.home / "Documents" / name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(ROOT / "assets" / "samples" / name, target)
            copies.append(target)
        self.tray.settings.desktop.notify = False  # no balloon left over in the screenshots
        self.tray.show_drop_window()
        rows = self.tray._drop_window.submit_files(copies)
        self.wait(lambda: all(row.finished for row in rows), 120)
        self.tray._drop_window.show_row(rows[0])
        self.tray.settings.desktop.notify = True

    def shoot_all(self, scheme: str) -> None:
        self.shoot_drop_window(scheme)
        self.shoot_menu(scheme)
        self.shoot_notification(scheme)
        self.shoot_overlay(scheme)
        for tab in ("General", "Models", "Folders"):
            self.shoot_settings(tab, scheme)

    def shoot_drop_window(self, scheme: str) -> None:
        window = self.tray._drop_window
        window.move(60, 40)
        self.tray.show_drop_window()
        self.grab("drop-window", scheme)
        window.hide()

    def shoot_menu(self, scheme: str) -> None:
        from PySide6.QtCore import QPoint

        icon = self.tray.tray.geometry()
        self.tray.menu.popup(QPoint(icon.right() - 300, icon.bottom() + 2))
        self.pause(200)
        folders = next(a for a in self.tray.menu.actions() if a.text() == "Watched folders")
        self.tray.menu.setActiveAction(folders)
        folders.menu().popup(QPoint(icon.right() - 300 - 420, icon.bottom() + 120))
        self.grab("tray-menu", scheme)
        folders.menu().close()
        self.tray.menu.close()

    def shoot_notification(self, scheme: str) -> None:
        entry = next(e for e in self.tray.history.entries if e.what == SAMPLES[0])
        self.tray._deliver(entry.result(), None, "capture")  # what a capture of that scan notifies
        self.grab("notification", scheme)
        self.tray.tray.showMessage("", "", msecs=1)  # dismiss

    def shoot_overlay(self, scheme: str) -> None:
        from PySide6.QtCore import QPoint, Qt
        from PySide6.QtGui import QPixmap
        from PySide6.QtTest import QTest
        from PySide6.QtWidgets import QLabel

        label = QLabel()
        label.setPixmap(QPixmap(str(ROOT / "assets" / "samples" / "tess_phototest.tif")))
        label.setWindowTitle("a scan")
        label.move(360, 140)
        label.show()
        self.pause(300)
        self.tray.capture()
        self.wait(lambda: self.tray._capture is not None and self.tray._capture.overlays, 10)
        self.pause(300)
        self.grab("capture-hint", scheme)
        overlay = self.tray._capture.overlays[0]
        origin = label.mapToGlobal(QPoint(0, 0))
        QTest.mousePress(
            overlay, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, origin + QPoint(20, 60)
        )
        QTest.mouseMove(overlay, origin + QPoint(610, 250))
        self.grab("capture-overlay", scheme)
        self.tray._capture.cancel()
        self.wait(lambda: self.tray._capture is None, 5)
        label.close()

    def shoot_settings(self, tab: str, scheme: str) -> None:
        self.tray.show_settings(tab)
        dialog = self.tray._settings_dialog
        dialog.move(280, 100)
        if tab == "Models":
            dialog.select_entry("granite-docling-258m")
        self.grab(f"settings-{tab.lower()}", scheme)
        dialog.reject()


if __name__ == "__main__":
    sys.exit(main())
