"""X11 clipboard through the ``xclip`` tool, or ``xsel`` where xclip is missing.

Both read the text, fork a background copy of themselves that owns the CLIPBOARD selection and answers
paste requests, and exit; the background copy keeps serving after textdrop has exited, until another
program takes the clipboard. That is what makes them the choice for the command line.
"""

from __future__ import annotations

import logging
import shutil
from typing import ClassVar

from textdrop.desktop.clipboard.base import Handler, has_x11_display, run_tool, which

log = logging.getLogger(__name__)


class XclipHandler(Handler):
    """``xclip -selection clipboard -in`` (Debian package ``xclip``)."""

    name: ClassVar[str] = "xclip"
    install_hint: ClassVar[str] = "sudo apt install xclip, or your distribution's xclip package"
    command: ClassVar[tuple[str, ...]] = ("xclip", "-selection", "clipboard", "-in")

    def is_compatible(self) -> bool:
        return has_x11_display()

    def is_installed(self) -> bool:
        return shutil.which(self.command[0]) is not None

    def copy(self, text: str) -> None:
        run_tool(which(self.command), text, detach=True)


class XselHandler(XclipHandler):
    """``xsel --clipboard --input`` (Debian package ``xsel``)."""

    name: ClassVar[str] = "xsel"
    install_hint: ClassVar[str] = "sudo apt install xsel, or your distribution's xsel package"
    command: ClassVar[tuple[str, ...]] = ("xsel", "--clipboard", "--input")
