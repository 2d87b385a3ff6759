"""Capture latency, tray start-up time and idle memory of the tray app, on a virtual X display.

Needs the desktop test tools (Xvfb, trayer, xclip; ``.ci/run`` installs them). Prints medians:

- **release → clipboard**: a 600×200 px region of real text (cropped from a bundled sample scan at
  1:1) handed to the tray exactly as the capture overlay hands it over on mouse release, until the text
  is on the clipboard (``copy_text`` returned). Embedded engine, warm. Goal <= 250 ms.
- **start → icon**: ``textdrop tray`` started as a process until its icon is embedded in the system
  tray (``xwininfo`` shows the icon window inside trayer). Goal <= 1.5 s.
- **idle RSS**: that process once its engine has loaded and it has been idle for 3 s. Goal <= 300 MB.

    .venv/bin/python benchmarks/capture.py [--runs 15] [--starts 5]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

SAMPLE = ROOT / "assets" / "samples" / "sroie_058.jpg"
REGION = (100, 250, 700, 450)
"""x0, y0, x1, y1 in pixels of the sample: 600×200 px of receipt text."""


def release_to_clipboard(runs: int) -> list[float]:
    """Seconds from the overlay's ``captured`` hand-over to the text being on the clipboard."""
    from PySide6.QtGui import QImage
    from PySide6.QtWidgets import QApplication

    from textdrop.desktop.app import TrayApp
    from textdrop.settings import load_settings

    app = QApplication.instance() or QApplication(["textdrop-bench"])
    tray = TrayApp(app, load_settings().model_copy(update={"engine": "rapid"}), watch=False)
    tray.notifier.show = lambda *args, **kwargs: "log"  # type: ignore[method-assign]
    assert tray.start(), "another tray app is running on this display"
    copy = tray._copy
    done: list[float] = []
    tray._copy = lambda text: (copy(text), done.append(time.perf_counter()))[0]  # type: ignore[method-assign]
    x0, y0, x1, y1 = REGION
    crop = QImage(str(SAMPLE)).copy(x0, y0, x1 - x0, y1 - y0)
    while not tray.queue.loaded.done():
        app.processEvents()
        time.sleep(0.01)
    times = []
    for _ in range(runs + 1):  # the first run warms caches and is not counted
        started = time.perf_counter()
        tray._captured(crop)
        while len(done) <= len(times):
            app.processEvents()
            time.sleep(0.001)
        times.append(done[-1] - started)
    tray.shutdown()
    return times[1:]


def start_and_idle(starts: int, home: Path) -> tuple[list[float], float]:
    """Start-up seconds per start, and the RSS in MB of the last tray process when idle."""
    import psutil

    from tests.helpers.display import tray_icon_shown

    env = {**os.environ, "TEXTDROP_HOME": str(home)}
    times, rss = [], 0.0
    for attempt in range(starts):
        started = time.perf_counter()
        process = subprocess.Popen(
            [sys.executable, "-m", "textdrop", "tray", "--no-watch"], cwd=ROOT, env=env
        )
        while not tray_icon_shown(env):
            if process.poll() is not None or time.perf_counter() - started > 30:
                raise RuntimeError("the tray did not show its icon")
            time.sleep(0.02)
        times.append(time.perf_counter() - started)
        if attempt == starts - 1:
            time.sleep(8)  # the engine loads in the worker, then the app idles
            rss = psutil.Process(process.pid).memory_info().rss / 2**20
        process.terminate()
        process.wait(30)
    return times, rss


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--starts", type=int, default=5)
    args = parser.parse_args()
    from tests.helpers.display import missing_tools, start_display

    if missing_tools():
        sys.exit(f"needs {', '.join(missing_tools())} (Debian packages)")
    display = start_display()
    os.environ.update(DISPLAY=display.name, QT_QPA_PLATFORM="xcb")
    try:
        with tempfile.TemporaryDirectory() as home:
            os.environ["TEXTDROP_HOME"] = home
            latencies = release_to_clipboard(args.runs)
            starts, rss = start_and_idle(args.starts, Path(home))
    finally:
        display.stop()
    print(
        f"release → clipboard, 600×200 px: median {statistics.median(latencies) * 1000:.0f} ms "
        f"(min {min(latencies) * 1000:.0f}, max {max(latencies) * 1000:.0f}; goal <= 250)"
    )
    print(
        f"start → tray icon:             median {statistics.median(starts):.2f} s "
        f"(min {min(starts):.2f}, max {max(starts):.2f}; goal <= 1.5)"
    )
    print(f"idle RSS, engine loaded:       {rss:.0f} MB (goal <= 300)")


if __name__ == "__main__":
    main()
