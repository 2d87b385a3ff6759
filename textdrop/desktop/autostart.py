"""Start the tray app when the user logs in: an XDG autostart entry on Linux and the BSDs, a LaunchAgent on
macOS, a command file in the Startup folder on Windows.

Each writes one small file that textdrop owns (atomically: a temp file renamed into place) and removes it
when the option is turned off. See ``docs/adr/012-tray-usability.md`` for why these three mechanisms.
"""

from __future__ import annotations

import logging
import os
import plistlib
import shutil
import subprocess
import sys
from pathlib import Path

log = logging.getLogger(__name__)

AUTOSTART_FILE = "textdrop.desktop"
LAUNCH_AGENT = "io.github.textdrop.tray"
"""The LaunchAgent's label, and its file name with ``.plist``."""
STARTUP_FILE = "textdrop.cmd"

_DESKTOP_ENTRY = """\
[Desktop Entry]
Type=Application
Name=textdrop
Comment=Local OCR: drop, capture and watch folders
Exec={exec}
Terminal=false
Categories=Utility;
X-GNOME-Autostart-enabled=true
"""


def autostart_path(platform: str | None = None) -> Path:
    """The file that starts textdrop at login on ``platform`` (a ``sys.platform`` value; default here).

    * Linux and the BSDs: ``$XDG_CONFIG_HOME/autostart/textdrop.desktop`` (default ``~/.config``).
    * macOS: ``~/Library/LaunchAgents/io.github.textdrop.tray.plist``.
    * Windows: ``%APPDATA%\\Microsoft\\Windows\\Start Menu\\Programs\\Startup\\textdrop.cmd``.
    """
    platform = platform or sys.platform
    if platform == "darwin":
        return Path.home() / "Library" / "LaunchAgents" / f"{LAUNCH_AGENT}.plist"
    if platform.startswith(("win", "cygwin")):
        appdata = Path(os.environ.get("APPDATA") or Path.home() / "AppData" / "Roaming")
        return appdata / "Microsoft" / "Windows" / "Start Menu" / "Programs" / "Startup" / STARTUP_FILE
    base = os.environ.get("XDG_CONFIG_HOME", "")
    folder = Path(base) if base and os.path.isabs(base) else Path.home() / ".config"  # relative: ignored
    return folder / "autostart" / AUTOSTART_FILE


def tray_command() -> list[str]:
    """The command line that starts the tray app: the frozen app, the ``textdrop`` script, or ``-m``."""
    if getattr(sys, "frozen", False):
        return [sys.executable, "tray"]
    script = shutil.which("textdrop")
    if script:
        return [os.path.abspath(script), "tray"]
    return [sys.executable, "-m", "textdrop", "tray"]


def _exec_quote(arg: str) -> str:
    """Quote one argument for a desktop entry's ``Exec`` key (freedesktop Desktop Entry spec)."""
    arg = arg.replace("%", "%%")
    if arg and not any(ch in arg for ch in " \t\n\"'\\><~|&;$*?#()`"):
        return arg
    escaped = "".join("\\" + ch if ch in '"`$\\' else ch for ch in arg)
    return f'"{escaped}"'


def entry_text(platform: str | None = None) -> bytes:
    """The content of :func:`autostart_path` for ``platform``: a desktop entry, a LaunchAgent property
    list (``RunAtLoad``), or a command file that starts the tray without waiting for it."""
    platform = platform or sys.platform
    command = tray_command()
    if platform == "darwin":
        agent = {
            "Label": LAUNCH_AGENT,
            "ProgramArguments": command,
            "RunAtLoad": True,
            "ProcessType": "Interactive",
        }
        return plistlib.dumps(agent)
    if platform.startswith(("win", "cygwin")):
        return f'@start "" {subprocess.list2cmdline(command)}\r\n'.encode()
    return _DESKTOP_ENTRY.format(exec=" ".join(_exec_quote(arg) for arg in command)).encode()


def set_start_at_login(enabled: bool) -> Path:
    """Make the tray app start (or not) when the user logs in, by writing or removing
    :func:`autostart_path`.

    Returns:
        The file written or removed.

    Raises:
        OSError: the file could not be written or removed.
    """
    path = autostart_path()
    if enabled:
        path.parent.mkdir(parents=True, exist_ok=True)
        temp = path.with_name(f".{path.name}.tmp")
        temp.write_bytes(entry_text())
        os.replace(temp, path)
        log.info("start at login: wrote %s", path)
    elif path.exists():
        path.unlink()
        log.info("start at login: removed %s", path)
    return path
