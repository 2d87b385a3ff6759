"""The clipboard handler interface, its error, and the helpers the command-line handlers share.

A handler is one way of putting text on the system clipboard (Qt, wl-copy, xclip, xsel, pbcopy, the
Windows API). Each lives in its own module, says whether it fits this platform and session
(:meth:`Handler.is_compatible`) and whether its tool is present (:meth:`Handler.is_installed`), and
carries an install hint for when it is not. :mod:`textdrop.desktop.clipboard` tries them in its order of
preference. (Pattern from NormCap's ``clipboard/handlers``.) Nothing here imports Qt.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import sys
import tempfile
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, ClassVar

from textdrop.engine.errors import ExitCode, TextdropError

if TYPE_CHECKING:
    from textdrop.desktop.clipboard.content import ClipboardContent

log = logging.getLogger(__name__)

TOOL_TIMEOUT = 5.0
"""Seconds a clipboard tool may take to take the text (it never needs more than a fraction of one)."""


class ClipboardError(TextdropError):
    """No clipboard handler could take the text; the message lists what was tried and how to fix it."""

    exit_code = ExitCode.OUTPUT


class Handler(ABC):
    """One way of copying text to the system clipboard.

    Subclasses set :attr:`name` and :attr:`install_hint` and implement the three methods. All three are
    cheap to call and import nothing heavy at module level (the Qt handler imports PySide6 only when used).
    """

    name: ClassVar[str]
    install_hint: ClassVar[str] = ""
    survives_exit: ClassVar[bool] = True
    """False when the text may vanish from the clipboard once this process exits."""

    @abstractmethod
    def is_compatible(self) -> bool:
        """True when this handler fits the platform and session (e.g. wl-copy needs a Wayland session)."""

    @abstractmethod
    def is_installed(self) -> bool:
        """True when the handler's tool is on the PATH or its API can be imported."""

    @abstractmethod
    def copy(self, text: str) -> None:
        """Put ``text`` on the clipboard.

        Raises:
            ClipboardError: the tool failed (its message says how); other exceptions are possible from
                platform APIs and are treated the same way by the chain.
        """

    def copy_content(self, content: ClipboardContent) -> None:
        """Put ``content`` on the clipboard as one item; handlers that can offer one format only (the
        command-line tools) put its plain text, as this default does.

        Raises:
            ClipboardError: as :meth:`copy`.
        """
        self.copy(content.text)

    def is_available(self) -> bool:
        """Compatible and installed."""
        return self.is_compatible() and self.is_installed()

    def __repr__(self) -> str:
        return f"<clipboard handler {self.name}>"


def is_unix_desktop() -> bool:
    """True on Linux and the BSDs (where the clipboard belongs to X11 or Wayland), not macOS or Windows."""
    return sys.platform not in ("win32", "cygwin", "darwin")


def has_wayland_session() -> bool:
    """True when a Wayland compositor is reachable (``WAYLAND_DISPLAY`` is set)."""
    return is_unix_desktop() and bool(os.environ.get("WAYLAND_DISPLAY"))


def has_x11_display() -> bool:
    """True when an X server is reachable (``DISPLAY`` is set: X11, or XWayland under a Wayland session)."""
    return is_unix_desktop() and bool(os.environ.get("DISPLAY"))


def which(command: Sequence[str]) -> list[str]:
    """``command`` with its program resolved on the PATH (as :meth:`Handler.is_installed` found it)."""
    return [shutil.which(command[0]) or command[0], *command[1:]]


def run_tool(
    args: Sequence[str],
    text: str,
    *,
    detach: bool = False,
    timeout: float = TOOL_TIMEOUT,
    env: Mapping[str, str] | None = None,
) -> None:
    """Run a clipboard tool with ``text`` as UTF-8 on its standard input and wait for it to exit.

    Tools that keep serving the selection after they have read their input (xclip, xsel, wl-copy) fork a
    background copy of themselves and the process we started exits. That copy inherits our standard
    output and error, so neither is a pipe: a pipe would stay open until the background copy ends (when
    another program takes the clipboard) and the caller would wait that long. Errors go to an unnamed
    temporary file instead, read back when the tool fails.

    Args:
        args: the command line.
        text: the text to copy.
        detach: start the tool in its own session, so the copy it leaves serving the selection outlives
            this process and is not hit by a Ctrl+C or hang-up meant for it.
        timeout: seconds before the tool is killed and the copy counts as failed.
        env: the environment (default: this process's).

    Raises:
        ClipboardError: the tool could not be started, timed out, or exited with an error.
    """
    tool = os.path.basename(args[0])
    with tempfile.TemporaryFile() as errors:
        try:
            completed = subprocess.run(
                list(args),
                input=text.encode("utf-8"),
                stdout=subprocess.DEVNULL,
                stderr=errors,
                timeout=timeout,
                start_new_session=detach,
                env=dict(env) if env is not None else None,
                check=False,
            )
        except subprocess.TimeoutExpired as exc:
            raise ClipboardError(f"{tool} did not finish within {timeout:g} s") from exc
        except OSError as exc:
            raise ClipboardError(f"{tool} could not be started ({exc.strerror or exc})") from exc
        if completed.returncode != 0:
            errors.seek(0)
            detail = " ".join(errors.read(2000).decode("utf-8", "replace").split())
            raise ClipboardError(
                f"{tool} exited with code {completed.returncode}" + (f": {detail}" if detail else "")
            )
    log.debug("%s took %d characters", tool, len(text))
