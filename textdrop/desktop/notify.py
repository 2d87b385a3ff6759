"""Short notifications after a capture or a drop: through the tray icon, the desktop, or at least the log.

Channels, in order: the tray icon's balloon (``QSystemTrayIcon.showMessage``) when there is a visible tray
icon on a system tray that shows messages; else the desktop's notification service:
``org.freedesktop.Notifications`` over D-Bus through GLib's ``gdbus`` tool, or ``notify-send`` on Linux
and the BSDs, ``osascript`` on macOS; else a line in the log. A notification that fails is logged and the
next channel is tried: a notification never breaks a capture.

Why ``gdbus`` and not ``PySide6.QtDBus``: ``Notify`` takes ``(susssasa{sv}i)``, and PySide6 cannot
marshal a Python ``int`` as D-Bus ``uint32`` (it sends ``int32``) nor an empty list as ``as`` (it sends
``av``), so notification servers built on GDBus or QtDBus (GNOME Shell, KDE, dunst, …) reject the call.
``gdbus call`` reads the method's signature from the server and types the arguments by it.
"""

from __future__ import annotations

import html
import logging
import shutil
import subprocess
import sys
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from PySide6.QtWidgets import QSystemTrayIcon

log = logging.getLogger(__name__)

APP_NAME = "textdrop"
TITLE_LIMIT = 80
MESSAGE_LIMIT = 200
MESSAGE_LINES = 3
DISPLAY_MS = 6000
"""How long a message stays up (errors twice as long); desktops may apply their own rules."""
TOOL_TIMEOUT = 3.0
"""Seconds a notification tool may take; it normally returns at once."""

Channel = Callable[[str, str, bool, "Callable[[], None] | None"], bool]


def shorten(text: str, limit: int = MESSAGE_LIMIT, *, lines: int = MESSAGE_LINES) -> str:
    """The first ``lines`` non-blank lines of ``text``, at most ``limit`` characters, ending in "…" if cut.

    Whitespace inside lines is folded; a cut falls on a word boundary when there is one nearby.
    """
    all_lines = [" ".join(line.split()) for line in text.splitlines()]
    kept = [line for line in all_lines if line]
    short = "\n".join(kept[:lines])
    cut = len(kept) > lines
    if len(short) > limit:
        short = short[: limit - 1]
        space = max(short.rfind(" "), short.rfind("\n"))
        if space > limit * 2 // 3:
            short = short[:space]
        cut = True
    if cut:
        short = short.rstrip() + "…"
    return short


class Notifier:
    """Notifications through the tray icon's balloon when there is a tray that supports messages, else the
    desktop's notification service (``org.freedesktop.Notifications`` over D-Bus via ``gdbus``, or
    ``notify-send``, or ``osascript`` on macOS), else the log.

    Call :meth:`show` from the GUI thread; from another thread the tray channel is skipped. Keep the
    Notifier referenced for as long as balloon clicks should reach ``on_click`` (the tray's
    ``messageClicked`` is connected to it).
    """

    def __init__(self, tray: QSystemTrayIcon | None = None) -> None:
        """Args: ``tray``: the app's tray icon; its balloon is used while it is visible."""
        self._tray = tray
        self._on_click: Callable[[], None] | None = None
        if tray is not None:
            tray.messageClicked.connect(self._message_clicked)

    def show(
        self,
        title: str,
        message: str,
        *,
        error: bool = False,
        on_click: Callable[[], None] | None = None,
    ) -> str:
        """Show a notification; never raises.

        Args:
            title: a short title (first line, shortened to :data:`TITLE_LIMIT` characters).
            message: the text; its first lines are shown, at most :data:`MESSAGE_LIMIT` characters.
            error: show it as an error (critical icon and urgency).
            on_click: called when the user clicks the tray balloon (the latest message's wins; the other
                channels do not report clicks).

        Returns:
            The channel used: ``"tray"``, ``"dbus"``, ``"notify-send"``, ``"osascript"`` or ``"log"``.
        """
        title = shorten(title, TITLE_LIMIT, lines=1) or APP_NAME
        body = shorten(message)
        channels: list[tuple[str, Channel]] = [
            ("tray", self._via_tray),
            ("dbus", _via_gdbus),
            ("notify-send", _via_notify_send),
            ("osascript", _via_osascript),
        ]
        for name, channel in channels:
            try:
                if channel(title, body, error, on_click):
                    log.debug("Notified through %s: %s", name, title)
                    return name
            except Exception as exc:  # a failed notification must not break what it reports on
                log.warning("Notification through %s failed: %s", name, exc)
        log.log(logging.ERROR if error else logging.INFO, "%s: %s", title, body.replace("\n", " "))
        return "log"

    def _via_tray(self, title: str, body: str, error: bool, on_click: Callable[[], None] | None) -> bool:
        tray = self._tray
        if tray is None or threading.current_thread() is not threading.main_thread():
            return False
        from PySide6.QtWidgets import QSystemTrayIcon

        if not (
            tray.isVisible()
            and QSystemTrayIcon.isSystemTrayAvailable()
            and QSystemTrayIcon.supportsMessages()
        ):
            return False
        icon = QSystemTrayIcon.MessageIcon.Critical if error else QSystemTrayIcon.MessageIcon.Information
        self._on_click = on_click
        tray.showMessage(title, body, icon, DISPLAY_MS * (2 if error else 1))
        return True

    def _message_clicked(self) -> None:
        callback = self._on_click
        if callback is None:
            return
        try:
            callback()
        except Exception:
            log.exception("The action of a clicked notification failed")


def _is_unix_desktop() -> bool:
    return sys.platform not in ("win32", "cygwin", "darwin")


def _via_gdbus(title: str, body: str, error: bool, on_click: Callable[[], None] | None) -> bool:
    gdbus = shutil.which("gdbus") if _is_unix_desktop() else None
    if gdbus is None:
        return False
    urgency = 2 if error else 1
    args = [
        gdbus,
        "call",
        "--session",
        "--dest",
        "org.freedesktop.Notifications",
        "--object-path",
        "/org/freedesktop/Notifications",
        "--method",
        "org.freedesktop.Notifications.Notify",
        "--",
        _gvariant_string(APP_NAME),
        "0",  # replaces_id: a new notification
        _gvariant_string("dialog-error" if error else "dialog-information"),
        _gvariant_string(title),
        _gvariant_string(html.escape(body, quote=False)),  # the body may be markup: escape & < >
        "[]",  # actions
        f"{{'urgency': <byte {urgency}>}}",
        str(DISPLAY_MS * (2 if error else 1)),
    ]
    _run(args)
    return True


def _via_notify_send(title: str, body: str, error: bool, on_click: Callable[[], None] | None) -> bool:
    notify_send = shutil.which("notify-send") if _is_unix_desktop() else None
    if notify_send is None:
        return False
    args = [
        notify_send,
        f"--app-name={APP_NAME}",
        f"--urgency={'critical' if error else 'normal'}",
        f"--icon={'dialog-error' if error else 'dialog-information'}",
        f"--expire-time={DISPLAY_MS * (2 if error else 1)}",
        "--",
        title,
        html.escape(body, quote=False),
    ]
    _run(args)
    return True


def _via_osascript(title: str, body: str, error: bool, on_click: Callable[[], None] | None) -> bool:
    osascript = shutil.which("osascript") if sys.platform == "darwin" else None
    if osascript is None:
        return False
    sound = ' sound name "Basso"' if error else ""
    script = f"display notification (item 2 of argv) with title (item 1 of argv){sound}"
    _run([osascript, "-e", "on run argv", "-e", script, "-e", "end run", title, body])
    return True


def _gvariant_string(text: str) -> str:
    """``text`` as a GVariant text-format string literal (what ``gdbus call`` parses)."""
    escaped = []
    for char in text:
        if char in ("\\", "'"):
            escaped.append("\\" + char)
        elif char == "\n":
            escaped.append("\\n")
        elif ord(char) < 0x20 or ord(char) == 0x7F:
            escaped.append(f"\\u{ord(char):04x}")
        else:
            escaped.append(char)
    return "'" + "".join(escaped) + "'"


def _run(args: list[str]) -> None:
    """Run a notification tool; raise RuntimeError with its message when it fails."""
    completed = subprocess.run(
        args, stdin=subprocess.DEVNULL, capture_output=True, timeout=TOOL_TIMEOUT, check=False
    )
    if completed.returncode != 0:
        detail = " ".join(completed.stderr.decode("utf-8", "replace").split())
        raise RuntimeError(f"{args[0]} exited with code {completed.returncode}: {detail or 'no message'}")
