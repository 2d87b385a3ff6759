"""Notifications: the tray balloon on the Xvfb tray, the desktop's service over D-Bus, and the fallbacks."""

from __future__ import annotations

import json
import logging
import os
import select
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from textdrop.desktop import notify
from textdrop.desktop.notify import MESSAGE_LIMIT, Notifier, shorten

log = logging.getLogger(__name__)

LONG = "First line of the result.\n\n" + " ".join(["word"] * 120) + "\nthird\nfourth\nfifth"


def hide_tools(monkeypatch: pytest.MonkeyPatch, *names: str) -> None:
    """Make ``shutil.which`` find none of ``names`` (and everything else as before)."""
    real_which = shutil.which
    monkeypatch.setattr(shutil, "which", lambda name, *a, **k: None if name in names else real_which(name))


def fake_tool(folder: Path, name: str, body: str) -> Path:
    folder.mkdir(exist_ok=True)
    path = folder / name
    path.write_text(f"#!/bin/sh\n{body}\n", encoding="utf-8")
    path.chmod(0o755)
    return path


# --- shortening ------------------------------------------------------------------------------------------


def test_shorten_keeps_short_text() -> None:
    assert shorten("Copied 12 lines") == "Copied 12 lines"
    assert shorten("  two   spaces \n\n second line ") == "two spaces\nsecond line"


def test_shorten_cuts_long_text_at_a_word() -> None:
    short = shorten(LONG)
    assert len(short) <= MESSAGE_LIMIT
    assert short.startswith("First line of the result.\nword word")
    assert short.endswith("word…")  # cut after a whole word, and marked


def test_shorten_keeps_the_first_lines() -> None:
    assert shorten("one\ntwo\nthree\nfour\nfive") == "one\ntwo\nthree…"
    assert shorten("a title\nand more", 80, lines=1) == "a title…"


# --- the tray balloon ------------------------------------------------------------------------------------


@pytest.fixture
def tray(qapp: object, qtbot: Any) -> Iterator[Any]:
    """A visible tray icon on the Xvfb display's system tray (trayer)."""
    from PySide6.QtGui import QColor, QIcon, QPixmap
    from PySide6.QtWidgets import QSystemTrayIcon

    qtbot.waitUntil(QSystemTrayIcon.isSystemTrayAvailable, timeout=5000)
    pixmap = QPixmap(22, 22)
    pixmap.fill(QColor("navy"))
    icon = QSystemTrayIcon(QIcon(pixmap))
    icon.show()
    qtbot.waitUntil(icon.isVisible, timeout=5000)
    yield icon
    icon.hide()
    icon.deleteLater()


@pytest.fixture
def shown(tray: Any, monkeypatch: pytest.MonkeyPatch) -> list[tuple[Any, ...]]:
    """Every call of ``tray.showMessage`` (which then does nothing)."""
    calls: list[tuple[Any, ...]] = []
    monkeypatch.setattr(tray, "showMessage", lambda *args: calls.append(args))
    return calls


@pytest.mark.gui
def test_tray_balloon_shows_for_real(x_display: object, tray: Any, qtbot: Any) -> None:
    from PySide6.QtWidgets import QApplication, QSystemTrayIcon

    assert QSystemTrayIcon.supportsMessages()
    assert Notifier(tray).show("Copied to the clipboard", "quick brown fox") == "tray"

    def balloon_visible() -> bool:
        return any(
            w.metaObject().className() == "QBalloonTip" and w.isVisible()
            for w in QApplication.topLevelWidgets()
        )

    qtbot.waitUntil(balloon_visible, timeout=5000)


@pytest.mark.gui
def test_tray_message_has_the_title_text_and_icon(
    x_display: object, tray: Any, shown: list[tuple[Any, ...]]
) -> None:
    from PySide6.QtWidgets import QSystemTrayIcon

    notifier = Notifier(tray)
    assert notifier.show("Read scan_001.jpg\nsecond title line", LONG) == "tray"
    title, body, icon, msecs = shown[-1]
    assert title == "Read scan_001.jpg…"
    assert body == shorten(LONG)
    assert icon == QSystemTrayIcon.MessageIcon.Information
    assert msecs > 0

    assert notifier.show("Capture failed", "The engine crashed.", error=True) == "tray"
    assert shown[-1][:3] == ("Capture failed", "The engine crashed.", QSystemTrayIcon.MessageIcon.Critical)


@pytest.mark.gui
def test_clicking_the_balloon_calls_the_latest_action(
    x_display: object, tray: Any, shown: list[tuple[Any, ...]]
) -> None:
    clicks: list[str] = []
    notifier = Notifier(tray)
    notifier.show("first", "text", on_click=lambda: clicks.append("first"))
    notifier.show("second", "text", on_click=lambda: clicks.append("second"))
    tray.messageClicked.emit()
    assert clicks == ["second"]

    notifier.show("third", "no action")
    tray.messageClicked.emit()
    assert clicks == ["second"]  # the latest message has no action: a click does nothing


@pytest.mark.gui
def test_a_failing_click_action_is_logged(
    x_display: object, tray: Any, shown: list[tuple[Any, ...]], caplog: pytest.LogCaptureFixture
) -> None:
    def broken() -> None:
        raise ValueError("window gone")

    notifier = Notifier(tray)
    notifier.show("title", "text", on_click=broken)
    tray.messageClicked.emit()
    assert "clicked notification failed" in caplog.text
    assert "window gone" in caplog.text


@pytest.mark.gui
def test_hidden_tray_icon_falls_back(
    x_display: object, tray: Any, shown: list[tuple[Any, ...]], monkeypatch: pytest.MonkeyPatch
) -> None:
    hide_tools(monkeypatch, "gdbus", "notify-send", "osascript")
    tray.hide()
    assert Notifier(tray).show("title", "text") == "log"
    assert shown == []


# --- without a tray --------------------------------------------------------------------------------------


def test_nothing_available_logs_and_does_not_raise(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    hide_tools(monkeypatch, "gdbus", "notify-send", "osascript")
    caplog.set_level(logging.INFO, logger=notify.__name__)
    assert Notifier().show("Copied to the clipboard", "quick\nbrown") == "log"
    assert "Copied to the clipboard: quick brown" in caplog.text
    assert Notifier(None).show("Capture failed", "no engine", error=True) == "log"
    assert [r.levelno for r in caplog.records if "Capture failed" in r.message] == [logging.ERROR]


def test_failing_tools_fall_through_to_the_log(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    bin_dir = tmp_path / "bin"
    fake_tool(
        bin_dir, "gdbus", "echo 'Error: The name org.freedesktop.Notifications was not provided' >&2; exit 1"
    )
    fake_tool(bin_dir, "notify-send", "sleep 10")  # hangs: cut off by the timeout
    real_which = shutil.which
    monkeypatch.setattr(shutil, "which", lambda name, *a, **k: real_which(name, path=str(bin_dir)))
    monkeypatch.setattr(notify, "TOOL_TIMEOUT", 0.5)
    monkeypatch.setattr(sys, "platform", "linux")
    assert Notifier().show("title", "text") == "log"
    assert "through dbus failed: " in caplog.text and "was not provided" in caplog.text
    assert "through notify-send failed" in caplog.text


def test_notify_send_gets_title_escaped_body_and_urgency(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    tool = fake_tool(tmp_path / "bin", "notify-send", 'printf "%s\\n" "$@" > "$0.args"')
    monkeypatch.setenv("PATH", f"{tool.parent}{os.pathsep}{os.environ['PATH']}")
    hide_tools(monkeypatch, "gdbus")
    monkeypatch.setattr(sys, "platform", "linux")
    assert Notifier().show("-Read it", "a < b & c", error=True) == "notify-send"
    args = Path(f"{tool}.args").read_text(encoding="utf-8").splitlines()
    assert "--urgency=critical" in args
    assert args[-3:] == ["--", "-Read it", "a &lt; b &amp; c"]  # "--": a title may start with "-"


def test_osascript_on_macos(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    tool = fake_tool(tmp_path / "bin", "osascript", 'printf "%s\\n" "$@" > "$0.args"')
    monkeypatch.setenv("PATH", f"{tool.parent}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setattr(sys, "platform", "darwin")
    assert Notifier().show("Read scan.pdf", 'It\'s "done"') == "osascript"
    args = Path(f"{tool}.args").read_text(encoding="utf-8").splitlines()
    assert args[-2:] == ["Read scan.pdf", 'It\'s "done"']  # passed as argv: no AppleScript quoting


# --- org.freedesktop.Notifications over a private D-Bus --------------------------------------------------

FAKE_SERVER = r'''
import json
from PySide6.QtCore import QCoreApplication
from PySide6.QtDBus import QDBusConnection, QDBusVirtualObject

INTERFACE = """<interface name="org.freedesktop.Notifications">
 <method name="Notify">
  <arg name="app_name" type="s" direction="in"/><arg name="replaces_id" type="u" direction="in"/>
  <arg name="app_icon" type="s" direction="in"/><arg name="summary" type="s" direction="in"/>
  <arg name="body" type="s" direction="in"/><arg name="actions" type="as" direction="in"/>
  <arg name="hints" type="a{sv}" direction="in"/><arg name="expire_timeout" type="i" direction="in"/>
  <arg name="id" type="u" direction="out"/>
 </method>
</interface>"""


class Server(QDBusVirtualObject):
    def introspect(self, path):
        return INTERFACE

    def handleMessage(self, message, connection):
        if message.member() == "Introspect":
            connection.send(message.createReply("<node>" + INTERFACE + "</node>"))
            return True
        if message.member() == "Notify":
            args = [a if isinstance(a, (str, int, list)) else None for a in message.arguments()]
            print(json.dumps({"signature": message.signature(), "args": args}), flush=True)
            connection.send(message.createReply(1))
            return True
        return False


app = QCoreApplication([])
bus = QDBusConnection.sessionBus()
server = Server()
ok = bus.registerVirtualObject("/org/freedesktop/Notifications", server)
ok = ok and bus.registerService("org.freedesktop.Notifications")
print("ready" if ok else "failed: " + bus.lastError().message(), flush=True)
app.exec()
'''


def read_line(process: subprocess.Popen[str], timeout: float = 10) -> str:
    assert process.stdout is not None
    ready, _, _ = select.select([process.stdout], [], [], timeout)
    assert ready, "no output in time"
    return process.stdout.readline().strip()


@pytest.fixture
def notification_server(monkeypatch: pytest.MonkeyPatch) -> Iterator[subprocess.Popen[str]]:
    """A private session bus with a fake notification server on it that prints each Notify call."""
    if shutil.which("dbus-daemon") is None or shutil.which("gdbus") is None:
        pytest.skip("needs dbus-daemon and gdbus (Debian packages dbus-daemon, libglib2.0-bin)")
    daemon = subprocess.Popen(
        ["dbus-daemon", "--session", "--nofork", "--print-address=1"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    server = None
    try:
        monkeypatch.setenv("DBUS_SESSION_BUS_ADDRESS", read_line(daemon))
        server = subprocess.Popen([sys.executable, "-c", FAKE_SERVER], stdout=subprocess.PIPE, text=True)
        assert read_line(server, 30) == "ready"
        yield server
    finally:
        for process in (server, daemon):
            if process is not None:
                process.terminate()
                process.wait(10)


def test_dbus_notification_has_the_right_types(
    notification_server: subprocess.Popen[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sys, "platform", "linux")
    body = "It's <b>bold</b> & ✓\nsecond line"
    title = '"scan_001.jpg"'  # also valid GVariant text: sent unquoted, gdbus would strip the quotes
    assert Notifier().show(title, body, error=True) == "dbus"
    call = json.loads(read_line(notification_server))
    # servers built on GDBus or QtDBus reject any other signature (replaces_id must be uint32)
    assert call["signature"] == "susssasa{sv}i"
    app_name, replaces_id, icon, summary, text, actions, _hints, timeout = call["args"]
    assert (app_name, replaces_id, icon, actions) == ("textdrop", 0, "dialog-error", [])
    assert summary == title
    assert text == "It's &lt;b&gt;bold&lt;/b&gt; &amp; ✓\nsecond line"  # the body is markup to the server
    assert timeout > 0
