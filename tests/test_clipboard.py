"""The clipboard handler chain: order, compatibility, failures, and real copies on the Xvfb display."""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import pytest

import textdrop.desktop.clipboard as clipboard
from textdrop.desktop.clipboard import qt as qt_handler
from textdrop.desktop.clipboard.base import ClipboardError, Handler, run_tool
from textdrop.engine.errors import ExitCode, TextdropError

log = logging.getLogger(__name__)

TEXT = "héllo wörld ✓"
EXTERNAL = ["windows", "pbcopy", "wl-copy", "xclip", "xsel"]


@pytest.fixture
def no_qt_app(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make the Qt handler see no Qt application, whatever earlier tests in this process created."""
    monkeypatch.setattr(qt_handler, "_gui_application_running", lambda: False)


@pytest.fixture
def qt_clipboard(qapp: object, qtbot: object) -> Iterator[object]:
    """The Qt app's clipboard; afterwards the app gives up the selection it may own.

    While this process owns the X selection, another client reading the clipboard waits for our event
    loop; a later test that reads it with a blocking ``xclip -o`` would hang.
    """
    from PySide6.QtGui import QClipboard, QGuiApplication

    board = QGuiApplication.clipboard()
    yield board
    for mode in (QClipboard.Mode.Clipboard, QClipboard.Mode.Selection):
        if board.ownsClipboard() if mode == QClipboard.Mode.Clipboard else board.ownsSelection():
            board.clear(mode)
    qtbot.wait(50)  # type: ignore[attr-defined]
    assert not board.ownsClipboard()


def set_session(monkeypatch: pytest.MonkeyPatch, platform: str, *, x11: bool, wayland: bool) -> None:
    monkeypatch.setattr(sys, "platform", platform)
    for name, present, value in (("DISPLAY", x11, ":99"), ("WAYLAND_DISPLAY", wayland, "wayland-0")):
        if present:
            monkeypatch.setenv(name, value)
        else:
            monkeypatch.delenv(name, raising=False)


def fake_tool(folder: Path, name: str, body: str = 'cat > "$0.in"; printf "%s\\n" "$@" > "$0.args"') -> Path:
    """An executable shell script ``folder/name``; by default it saves its stdin and its arguments."""
    folder.mkdir(exist_ok=True)
    path = folder / name
    path.write_text(f"#!/bin/sh\n{body}\n", encoding="utf-8")
    path.chmod(0o755)
    return path


def read_clipboard(*command: str, expected: str | None = None) -> str:
    """Read the clipboard with a command-line tool (retrying for up to 3 s until it reads ``expected``)."""
    deadline = time.monotonic() + 3
    while True:
        result = subprocess.run(command, capture_output=True, timeout=10, check=False)
        text = result.stdout.decode("utf-8")
        if expected is None or text == expected or time.monotonic() > deadline:
            return text
        time.sleep(0.1)


# --- the chain, without a display ----------------------------------------------------------------------


def test_order_depends_on_who_copies() -> None:
    persistent = [h.name for h in clipboard.handlers(persistent=True)]
    live = [h.name for h in clipboard.handlers(persistent=False)]
    # the command line: tools that outlive the process first, Qt (gone with the process) last
    assert persistent == [*EXTERNAL, "qt"]
    # the tray app: its own Qt clipboard first, the same tools after it
    assert live == ["qt", *EXTERNAL]
    assert all(isinstance(h, Handler) and h.install_hint for h in clipboard.handlers())


@pytest.mark.parametrize(
    ("platform", "x11", "wayland", "compatible"),
    [
        ("linux", True, False, ["xclip", "xsel"]),
        ("linux", False, True, ["wl-copy"]),
        ("linux", True, True, ["wl-copy", "xclip", "xsel"]),  # XWayland: X tools after wl-copy
        ("linux", False, False, []),
        ("freebsd14", True, False, ["xclip", "xsel"]),
        ("darwin", True, False, ["pbcopy"]),  # XQuartz's DISPLAY does not make xclip the macOS clipboard
        ("win32", False, False, ["windows"]),
    ],
)
def test_compatibility_follows_platform_and_session(
    monkeypatch: pytest.MonkeyPatch,
    no_qt_app: None,
    platform: str,
    x11: bool,
    wayland: bool,
    compatible: list[str],
) -> None:
    set_session(monkeypatch, platform, x11=x11, wayland=wayland)
    assert [h.name for h in clipboard.handlers() if h.is_compatible()] == compatible


def test_installed_follows_path(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(shutil, "which", lambda name: "/usr/bin/xsel" if name == "xsel" else None)
    installed = {h.name: h.is_installed() for h in clipboard.handlers()}
    assert installed["xsel"] is True
    assert installed["xclip"] is installed["wl-copy"] is installed["pbcopy"] is False
    assert installed["qt"] is True  # PySide6 is importable in the test environment


def test_qt_handler_needs_a_running_app(no_qt_app: None) -> None:
    assert not clipboard.HANDLERS["qt"]().is_compatible()


def test_import_does_not_load_qt() -> None:
    code = (
        "import sys, textdrop.desktop.clipboard as c; [h.is_available() for h in c.handlers()]; "
        "print(sorted(m for m in sys.modules if m.startswith('PySide6')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60)
    assert out.stdout.strip() == "[]"


class _Broken(Handler):
    name: ClassVar[str] = "broken"
    install_hint: ClassVar[str] = "fix broken"

    def is_compatible(self) -> bool:
        return True

    def is_installed(self) -> bool:
        return True

    def copy(self, text: str) -> None:
        raise OSError("device on fire")


class _Missing(_Broken):
    name: ClassVar[str] = "missing"
    install_hint: ClassVar[str] = "apt install missing"

    def is_installed(self) -> bool:
        return False


class _Elsewhere(_Broken):
    name: ClassVar[str] = "elsewhere"

    def is_compatible(self) -> bool:
        return False


class _Working(_Broken):
    name: ClassVar[str] = "working"
    copied: ClassVar[list[str]] = []

    def copy(self, text: str) -> None:
        self.copied.append(text)


def use_chain(monkeypatch: pytest.MonkeyPatch, *classes: type[Handler]) -> None:
    monkeypatch.setattr(clipboard, "HANDLERS", {cls.name: cls for cls in classes})
    names = tuple(cls.name for cls in classes)
    monkeypatch.setattr(clipboard, "PREFERENCE", {True: names, False: names})


def test_chain_moves_past_failures_to_the_first_that_works(monkeypatch: pytest.MonkeyPatch) -> None:
    use_chain(monkeypatch, _Elsewhere, _Missing, _Broken, _Working)
    _Working.copied.clear()
    assert clipboard.copy_text(TEXT) == "working"
    assert _Working.copied == [TEXT]


def test_chain_failure_lists_what_was_tried(monkeypatch: pytest.MonkeyPatch) -> None:
    use_chain(monkeypatch, _Elsewhere, _Missing, _Broken)
    with pytest.raises(ClipboardError) as raised:
        clipboard.copy_text(TEXT)
    message = str(raised.value)
    assert message.startswith("No clipboard tool worked:")
    assert "missing not installed (apt install missing)" in message
    assert "broken failed (device on fire)" in message
    assert "elsewhere" not in message  # not for this platform: not worth mentioning


def test_nothing_installed_names_the_install_hints(monkeypatch: pytest.MonkeyPatch, no_qt_app: None) -> None:
    set_session(monkeypatch, "linux", x11=True, wayland=True)
    monkeypatch.setattr(shutil, "which", lambda name: None)
    with pytest.raises(ClipboardError) as raised:
        clipboard.copy_text(TEXT)
    error = raised.value
    assert isinstance(error, TextdropError)
    assert error.exit_code == ExitCode.OUTPUT
    message = str(error)
    assert "wl-copy not installed (sudo apt install wl-clipboard" in message
    assert "xclip not installed (sudo apt install xclip" in message
    assert "xsel not installed (sudo apt install xsel" in message


def test_no_session_says_so(monkeypatch: pytest.MonkeyPatch, no_qt_app: None) -> None:
    set_session(monkeypatch, "linux", x11=False, wayland=False)
    with pytest.raises(ClipboardError, match=r"neither DISPLAY \(X11\) nor WAYLAND_DISPLAY"):
        clipboard.copy_text(TEXT)


def test_wl_copy_gets_utf8_text_and_a_text_type(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, no_qt_app: None
) -> None:
    tool = fake_tool(tmp_path / "bin", "wl-copy")
    monkeypatch.setenv("PATH", f"{tool.parent}{os.pathsep}{os.environ['PATH']}")
    set_session(monkeypatch, "linux", x11=False, wayland=True)
    assert clipboard.copy_text(TEXT) == "wl-copy"
    assert Path(f"{tool}.in").read_bytes() == TEXT.encode("utf-8")
    assert Path(f"{tool}.args").read_text().split() == ["--type", "text/plain;charset=utf-8"]


def test_pbcopy_on_macos_is_told_utf8(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, no_qt_app: None
) -> None:
    tool = fake_tool(tmp_path / "bin", "pbcopy", 'cat > "$0.in"; echo "$LC_CTYPE" > "$0.args"')
    monkeypatch.setenv("PATH", f"{tool.parent}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.delenv("LC_CTYPE", raising=False)
    set_session(monkeypatch, "darwin", x11=False, wayland=False)
    assert clipboard.copy_text(TEXT) == "pbcopy"
    assert Path(f"{tool}.in").read_text(encoding="utf-8") == TEXT
    assert Path(f"{tool}.args").read_text().strip() == "UTF-8"


def test_failing_tool_falls_through_with_its_message(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, no_qt_app: None
) -> None:
    bin_dir = tmp_path / "bin"
    fake_tool(bin_dir, "xclip", "echo 'Error: Can'\"'\"'t open display: :99' >&2; exit 1")
    fake_tool(bin_dir, "xsel")
    real_which = shutil.which
    monkeypatch.setattr(shutil, "which", lambda name, *a, **k: real_which(name, path=str(bin_dir)))
    set_session(monkeypatch, "linux", x11=True, wayland=False)
    assert clipboard.copy_text(TEXT) == "xsel"
    assert (bin_dir / "xsel.in").read_text(encoding="utf-8") == TEXT

    (bin_dir / "xsel").unlink()
    with pytest.raises(ClipboardError) as raised:
        clipboard.copy_text(TEXT)
    message = str(raised.value)
    assert "xclip failed (xclip exited with code 1: Error: Can't open display: :99)" in message
    assert "xsel not installed" in message


# --- run_tool: the subprocess discipline -----------------------------------------------------------------


def test_run_tool_does_not_wait_for_a_forked_server(tmp_path: Path) -> None:
    """xclip, xsel and wl-copy leave a forked copy serving the selection; copying must not wait for it."""
    pid_file = tmp_path / "server.pid"
    server = textwrap.dedent(
        f"""
        import os, sys, time
        data = sys.stdin.buffer.read()
        if os.fork():
            sys.exit(0)
        open({str(pid_file)!r}, "w").write(str(os.getpid()))
        print("serving", flush=True)  # holds on to the stdout and stderr it inherited
        time.sleep(60)
        """
    )
    started = time.monotonic()
    try:
        run_tool([sys.executable, "-c", server], TEXT, detach=True, timeout=10)
        elapsed = time.monotonic() - started
        deadline = time.monotonic() + 5
        while not pid_file.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        pid = int(pid_file.read_text())
        os.kill(pid, 0)  # the forked server is still running ...
        assert os.getsid(pid) != os.getsid(0)  # ... in a session of its own
        assert elapsed < 5  # ... and we did not wait for it
    finally:
        if pid_file.exists():
            os.kill(int(pid_file.read_text()), 15)


def test_run_tool_reports_exit_code_stderr_and_timeout() -> None:
    with pytest.raises(ClipboardError, match=r"exited with code 3: no clipboard here"):
        run_tool(
            [sys.executable, "-c", "import sys; sys.stderr.write('no clipboard\\n here'); sys.exit(3)"], "x"
        )
    with pytest.raises(ClipboardError, match=r"did not finish within 0.5 s"):
        run_tool([sys.executable, "-c", "import time; time.sleep(5)"], "x", timeout=0.5)
    with pytest.raises(ClipboardError, match="could not be started"):
        run_tool(["/nonexistent/xclip"], "x")


# --- real copies on the Xvfb display ---------------------------------------------------------------------


@pytest.mark.gui
def test_xclip_copy_reads_back(x_display: object, qapp: object) -> None:
    """With the Qt app running too, a persistent copy still goes through xclip."""
    assert clipboard.copy_text(TEXT, persistent=True) == "xclip"
    assert read_clipboard("xclip", "-selection", "clipboard", "-o", expected=TEXT) == TEXT


@pytest.mark.gui
def test_text_survives_the_process_that_copied_it(x_display: object) -> None:
    text = f"{TEXT} from a process that has exited"
    code = (
        "import sys; from textdrop.desktop.clipboard import copy_text; "
        "print(copy_text(sys.argv[1], persistent=True)); "
        "print(any(m.startswith('PySide6') for m in sys.modules))"
    )
    started = time.monotonic()
    child = subprocess.run(
        [sys.executable, "-c", code, text], capture_output=True, text=True, timeout=60, check=True
    )
    assert time.monotonic() - started < 30
    assert child.stdout.split() == ["xclip", "False"]  # copied by xclip, without loading Qt
    assert read_clipboard("xclip", "-selection", "clipboard", "-o", expected=text) == text


@pytest.mark.gui
def test_xsel_when_xclip_is_missing(x_display: object, monkeypatch: pytest.MonkeyPatch) -> None:
    if shutil.which("xsel") is None:
        pytest.skip("needs xsel (Debian package xsel)")
    real_which = shutil.which
    monkeypatch.setattr(shutil, "which", lambda name, *a, **k: None if name == "xclip" else real_which(name))
    text = f"{TEXT} via xsel"
    assert clipboard.copy_text(text, persistent=True) == "xsel"
    assert read_clipboard("xsel", "--clipboard", "--output", expected=text) == text


@pytest.mark.gui
def test_qt_clipboard_in_the_tray_app(qt_clipboard: Any, qtbot: object) -> None:
    text = f"{TEXT} from Qt"
    assert clipboard.copy_text(text, persistent=False) == "qt"
    assert qt_clipboard.text() == text
    # another X client reads it while Qt serves the selection (so the event loop must keep running)
    reader = subprocess.Popen(
        ["xclip", "-selection", "clipboard", "-o"], stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    try:
        qtbot.waitUntil(lambda: reader.poll() is not None, timeout=5000)  # type: ignore[attr-defined]
    finally:
        if reader.poll() is None:
            reader.kill()
    out, err = reader.communicate()
    assert out.decode("utf-8") == text, err


@pytest.mark.gui
def test_read_image_from_the_qt_clipboard(qt_clipboard: Any) -> None:
    from PySide6.QtGui import QColor, QImage

    image = QImage(37, 23, QImage.Format.Format_RGB32)
    image.fill(QColor("teal"))
    qt_clipboard.setImage(image)
    got = clipboard.read_image()
    assert got is not None
    assert (got.width(), got.height()) == (37, 23)
    assert QColor(got.pixel(5, 5)) == QColor("teal")

    qt_clipboard.setText("no picture")
    assert clipboard.read_image() is None


@pytest.mark.gui
def test_read_image_copied_by_another_program(x_display: object, qtbot: object, tmp_path: Path) -> None:
    """The real use: a screenshot tool put a PNG on the clipboard; the tray app reads it."""
    from PySide6.QtGui import QColor, QImage

    image = QImage(64, 40, QImage.Format.Format_RGB32)
    image.fill(QColor("orange"))
    png = tmp_path / "shot.png"
    assert image.save(str(png))
    subprocess.run(
        ["xclip", "-selection", "clipboard", "-t", "image/png", "-i", str(png)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        timeout=10,
        check=True,
    )
    got = None

    def has_image() -> bool:
        nonlocal got
        got = clipboard.read_image()
        return got is not None

    qtbot.waitUntil(has_image, timeout=5000)  # type: ignore[attr-defined]
    assert got is not None
    assert (got.width(), got.height()) == (64, 40)


def test_read_image_needs_a_qt_app(no_qt_app: None) -> None:
    with pytest.raises(RuntimeError, match="QGuiApplication"):
        clipboard.read_image()
