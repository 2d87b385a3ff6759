"""A virtual X display for the desktop tests: Xvfb with two screens of different sizes, and a system tray.

:func:`start_display` starts ``Xvfb`` on a free display number with screen 0 at :data:`SCREEN_0` and
screen 1 at :data:`SCREEN_1` pixels (two X screens, which Qt reports as two ``QScreen`` objects), then
``trayer`` (a freedesktop system tray) on screen 0, and returns a :class:`Display` whose ``stop`` ends
both. The ``x_display`` fixture in ``tests/conftest.py`` starts one per test session.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

SCREEN_0 = (1280, 800)
SCREEN_1 = (1024, 768)
TOOLS = ("Xvfb", "trayer", "xdotool", "xclip")
"""Debian packages xvfb, trayer, xdotool, xclip; ``.ci/run`` installs them."""


@dataclass
class Display:
    """A running Xvfb (and trayer); ``name`` is the ``DISPLAY`` value, e.g. ``":42"``."""

    name: str
    xvfb: subprocess.Popen[bytes]
    tray: subprocess.Popen[bytes] | None

    def env(self) -> dict[str, str]:
        """The environment for a child process on this display."""
        return {**os.environ, "DISPLAY": self.name, "QT_QPA_PLATFORM": "xcb"}

    def stop(self) -> None:
        for process in (self.tray, self.xvfb):
            if process is not None and process.poll() is None:
                process.terminate()
                try:
                    process.wait(5)
                except subprocess.TimeoutExpired:
                    process.kill()


def missing_tools() -> list[str]:
    """The tools of :data:`TOOLS` that are not on the PATH."""
    return [tool for tool in TOOLS if shutil.which(tool) is None]


def start_display() -> Display:
    """Start Xvfb (two screens) and trayer; raise RuntimeError when either does not come up in 10 s."""
    number = next(n for n in range(90, 200) if not Path(f"/tmp/.X11-unix/X{n}").exists())
    name = f":{number}"
    screens = [
        arg for i, (w, h) in enumerate((SCREEN_0, SCREEN_1)) for arg in ("-screen", str(i), f"{w}x{h}x24")
    ]
    xvfb = subprocess.Popen(
        ["Xvfb", name, *screens, "-nolisten", "tcp"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    env = {**os.environ, "DISPLAY": name}
    _wait(lambda: subprocess.run(["xdpyinfo"], env=env, capture_output=True).returncode == 0, "Xvfb", xvfb)
    tray = subprocess.Popen(
        ["trayer", "--edge", "top", "--align", "right", "--widthtype", "pixel", "--width", "120"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    time.sleep(0.5)  # trayer claims the _NET_SYSTEM_TRAY selection right after it maps its window
    return Display(name, xvfb, tray)


def _wait(ready: object, what: str, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{what} exited with code {process.returncode}")
        if ready():  # type: ignore[operator]
            return
        time.sleep(0.1)
    raise RuntimeError(f"{what} did not start within 10 s")


def screenshots_dir(tmp_path: Path) -> Path:
    """Where tests save screenshots for a person to look at: ``$TEXTDROP_SCREENSHOTS`` (``make test``
    sets it to ``test-output/screenshots``) or the test's own temp folder."""
    folder = Path(os.environ.get("TEXTDROP_SCREENSHOTS") or tmp_path)
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def tray_icon_shown(env: dict[str, str], name: str = "textdrop") -> bool:
    """True once a window whose name or class holds ``name`` is a child of trayer's window (an icon
    embedded in the system tray), according to ``xwininfo -root -tree`` on ``env``'s display."""
    tree = subprocess.run(["xwininfo", "-root", "-tree"], env=env, capture_output=True, text=True).stdout
    in_tray = False
    for line in tree.splitlines():
        lowered = line.lower()
        if "trayer" in lowered or "panel" in lowered:
            in_tray = True
        elif in_tray and name in lowered:
            return True
    return False
