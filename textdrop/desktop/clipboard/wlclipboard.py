"""Wayland clipboard through ``wl-copy`` (package ``wl-clipboard``).

wl-copy forks a background copy of itself that serves the clipboard after textdrop has exited, like
xclip does on X11.
"""

from __future__ import annotations

import logging
import shutil
from typing import ClassVar

from textdrop.desktop.clipboard.base import Handler, has_wayland_session, run_tool, which

log = logging.getLogger(__name__)


class WlCopyHandler(Handler):
    """``wl-copy --type text/plain;charset=utf-8``.

    The type is given so that wl-copy does not guess one from the content (text that looks like HTML
    would otherwise be offered as ``text/html`` only).
    """

    name: ClassVar[str] = "wl-copy"
    install_hint: ClassVar[str] = "sudo apt install wl-clipboard, or your distribution's wl-clipboard package"
    command: ClassVar[tuple[str, ...]] = ("wl-copy", "--type", "text/plain;charset=utf-8")

    def is_compatible(self) -> bool:
        return has_wayland_session()

    def is_installed(self) -> bool:
        return shutil.which(self.command[0]) is not None

    def copy(self, text: str) -> None:
        run_tool(which(self.command), text, detach=True)
