"""Entry point of the bundled ``textdrop`` executable (PyInstaller): the CLI and the tray app in one.

``multiprocessing.freeze_support()`` first, so a frozen child process runs its task instead of the CLI.
On Windows the executable is built windowed (no console flashes up for the tray app); when it is started
from a console, it attaches to that console so ``textdrop ocr … --stdout`` still prints there.
"""

from __future__ import annotations

import multiprocessing
import sys


def _attach_windows_console() -> None:
    import ctypes

    if ctypes.windll.kernel32.AttachConsole(-1):  # ATTACH_PARENT_PROCESS: started from a console
        sys.stdout = open("CONOUT$", "w", encoding="utf-8", buffering=1)  # noqa: SIM115 - lives as long as the process
        sys.stderr = open("CONOUT$", "w", encoding="utf-8", buffering=1)  # noqa: SIM115


def main() -> None:
    multiprocessing.freeze_support()
    if sys.platform == "win32" and sys.stdout is None:
        _attach_windows_console()
    from textdrop.cli import run

    sys.exit(run())


if __name__ == "__main__":
    main()
