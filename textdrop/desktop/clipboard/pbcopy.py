"""macOS clipboard through ``pbcopy``, which ships with the system.

The pasteboard server keeps the text; pbcopy exits at once. pbcopy decodes its input by the locale, which
is unset for apps started from Finder, so the environment says UTF-8 explicitly.
"""

from __future__ import annotations

import logging
import os
import shutil
import sys
from typing import ClassVar

from textdrop.desktop.clipboard.base import Handler, run_tool, which

log = logging.getLogger(__name__)


class PbcopyHandler(Handler):
    """``pbcopy`` with ``LC_CTYPE=UTF-8``."""

    name: ClassVar[str] = "pbcopy"
    install_hint: ClassVar[str] = "pbcopy ships with macOS in /usr/bin; check that /usr/bin is on PATH"

    def is_compatible(self) -> bool:
        return sys.platform == "darwin"

    def is_installed(self) -> bool:
        return shutil.which("pbcopy") is not None

    def copy(self, text: str) -> None:
        run_tool(which(["pbcopy"]), text, env={**os.environ, "LC_CTYPE": "UTF-8"})
