"""Capture latency, tray start-up time and idle memory of the tray app, on a virtual X display.

Needs the desktop test tools (Xvfb, trayer, xclip; ``.ci/run`` installs them). Prints medians:

- **release → clipboard**: a 600×200 px region of real text (cropped from a bundled sample scan at
  1:1) handed to the tray exactly as the capture overlay hands it over on mouse release, until the text
  is on the clipboard (the tray's copy returned). Embedded engine, warm. Goal <= 250 ms. With where the
  time goes: PNG encoding on the GUI thread, the job (queue, decoding, the engine), the engine's page
  alone, and the clipboard (plain text, Markdown and HTML).
- **start → icon**: ``textdrop tray`` started as a process until its icon is embedded in the system
  tray (``xwininfo`` shows the icon window inside trayer). Goal <= 1.0 s.
- **idle RSS after the first capture**: that process once it has read an image (OCR image on clipboard,
  the same path as a capture) and idled for 3 s. Goal <= 300 MB.

The machine's load matters: the figures printed include the 1-minute load average and CPU count.

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


def release_to_clipboard(runs: int) -> dict[str, list[float]]:
    """Seconds from the overlay's ``captured`` hand-over to the text being on the clipboard, and its parts:
    ``total``, ``encode`` (PNG, GUI thread), ``job`` (OcrResult.seconds: decoding and the engine),
    ``engine`` (the page's own seconds), ``copy`` (the clipboard)."""
    from PySide6.QtGui import QImage
    from PySide6.QtWidgets import QApplication

    from textdrop.desktop.app import TrayApp
    from textdrop.desktop.bridge import png_bytes
    from textdrop.settings import load_settings

    app = QApplication.instance() or QApplication(["textdrop-bench"])
    tray = TrayApp(app, load_settings().model_copy(update={"engine": "rapid"}), watch=False)
    tray.notifier.show = lambda *args, **kwargs: "log"  # type: ignore[method-assign]
    assert tray.start(), "another tray app is running on this display"
    copy, deliver = tray._copy, tray._deliver
    marks: dict[str, float] = {}

    def timed_copy(content: object) -> object:
        marks["copy_start"] = time.perf_counter()
        copied = copy(content)  # type: ignore[arg-type]
        marks["done"] = time.perf_counter()
        return copied

    def timed_deliver(result: object, *args: object, **kwargs: object) -> object:
        marks["job"], marks["engine"] = result.seconds, result.pages[0].seconds  # type: ignore[attr-defined]
        return deliver(result, *args, **kwargs)  # type: ignore[arg-type]

    tray._copy = timed_copy  # type: ignore[method-assign]
    tray._deliver = timed_deliver  # type: ignore[method-assign]
    x0, y0, x1, y1 = REGION
    crop = QImage(str(SAMPLE)).copy(x0, y0, x1 - x0, y1 - y0)
    while not tray.queue.loaded.done():
        app.processEvents()
        time.sleep(0.01)
    parts: dict[str, list[float]] = {key: [] for key in ("total", "encode", "job", "engine", "copy")}
    for run in range(runs + 1):  # the first run warms caches and is not counted
        marks.clear()
        started = time.perf_counter()
        tray._captured(crop)
        while "done" not in marks:
            app.processEvents()
            time.sleep(0.001)
        encode_start = time.perf_counter()
        png_bytes(crop)  # the GUI thread's share, timed apart (the same call _captured makes)
        encode = time.perf_counter() - encode_start
        if run:
            parts["total"].append(marks["done"] - started)
            parts["encode"].append(encode)
            parts["job"].append(marks["job"])
            parts["engine"].append(marks["engine"])
            parts["copy"].append(marks["done"] - marks["copy_start"])
    tray.shutdown()
    return parts


def start_and_idle(starts: int, home: Path) -> tuple[list[float], float]:
    """Start-up seconds per start, and the RSS in MB of the last tray process, idle after one capture."""

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
            rss = idle_after_capture(process.pid, home, env)
        process.terminate()
        process.wait(30)
    return times, rss


def idle_after_capture(pid: int, home: Path, env: dict[str, str]) -> float:
    """Put the region on the clipboard, have the tray read it (OCR image on clipboard: the capture's path
    from the hand-over on), wait for its result in the history, idle 3 s; the RSS in MB."""
    import psutil
    from PIL import Image

    from textdrop.desktop.instance import send_request

    region = home / "region.png"
    Image.open(SAMPLE).crop(REGION).save(region)
    holder = subprocess.Popen(
        ["xclip", "-selection", "clipboard", "-t", "image/png", "-i", str(region)], env=env
    )
    holder.wait(10)
    history = home / "data" / "history.jsonl"
    deadline = time.monotonic() + 60
    while not history.exists():  # the engine may still be loading: ask until the result is there
        if time.monotonic() > deadline:
            raise RuntimeError("the tray did not read the clipboard image")
        send_request("ocr-clipboard")
        time.sleep(2)
    time.sleep(3)
    return psutil.Process(pid).memory_info().rss / 2**20


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
    total = latencies["total"]
    print(f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f} at the end")
    print(
        f"release → clipboard, 600×200 px: median {statistics.median(total) * 1000:.0f} ms "
        f"(min {min(total) * 1000:.0f}, max {max(total) * 1000:.0f}; goal <= 250)"
    )
    for key, what in (
        ("encode", "PNG encoding (GUI thread)"),
        ("job", "job: decoding + engine"),
        ("engine", "engine: detection + recognition"),
        ("copy", "clipboard: 3 formats"),
    ):
        print(f"  {what:<33} median {statistics.median(latencies[key]) * 1000:.0f} ms")
    print(
        f"start → tray icon:             median {statistics.median(starts):.2f} s "
        f"(min {min(starts):.2f}, max {max(starts):.2f}; goal <= 1.0)"
    )
    print(f"idle RSS after the first capture: {rss:.0f} MB (goal <= 300)")


if __name__ == "__main__":
    main()
