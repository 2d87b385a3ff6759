"""The Wayland hotkey through the xdg-desktop-portal GlobalShortcuts interface, against a fake portal on a
private session bus (dbus-daemon; skipped where it is missing)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest

from tests.helpers.fake_portal import FakePortal, private_session_bus
from textdrop.desktop.capture import hotkey as hotkey_module
from textdrop.desktop.capture.globalshortcuts import (
    DESCRIPTION,
    SHORTCUT_ID,
    PortalShortcut,
    portal_version,
    preferred_trigger,
)
from textdrop.desktop.capture.hotkey import HotkeyListener
from textdrop.desktop.capture.xgrab import GrabError


@pytest.fixture
def bus() -> Iterator[str]:
    """The address of a private session bus."""
    with private_session_bus() as address:
        yield address


@pytest.fixture
def wayland(bus: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """A Wayland session whose session bus is the private one; yields its address."""
    monkeypatch.setattr(hotkey_module, "is_wayland", lambda: True)
    monkeypatch.setenv("DBUS_SESSION_BUS_ADDRESS", bus)
    return bus


def serve(address: str, request: pytest.FixtureRequest, **options: Any) -> FakePortal:
    portal = FakePortal(address, **options)
    request.addfinalizer(portal.close)
    return portal


@pytest.mark.parametrize(
    ("modifiers", "key", "trigger"),
    [
        (["ctrl", "alt"], "o", "CTRL+ALT+o"),
        (["cmd"], "f9", "LOGO+F9"),
        (["shift"], "print_screen", "SHIFT+Print"),
        (["ctrl", "shift"], "-", "CTRL+SHIFT+minus"),
        (["alt"], "2", "ALT+2"),
    ],
)
def test_preferred_trigger_is_the_xdg_shortcut_notation(modifiers: list[str], key: str, trigger: str) -> None:
    assert preferred_trigger(modifiers, key) == trigger


def test_altgr_has_no_portal_notation() -> None:
    with pytest.raises(GrabError, match="AltGr"):
        preferred_trigger(["alt_gr"], "o")


def test_binds_the_shortcut_and_calls_back_on_activated(bus: str, request: pytest.FixtureRequest) -> None:
    portal = serve(bus, request)
    assert portal_version(bus) == (1, "")
    pressed = threading.Event()
    shortcut = PortalShortcut(["ctrl", "alt"], "o", pressed.set, bus=bus, timeout_s=10)
    shortcut.start()
    try:
        assert shortcut.is_alive()
        (options,) = portal.sessions
        assert options["handle_token"][1].startswith("textdrop_")
        assert options["session_handle_token"][0] == "s"
        ((session, shortcuts, parent_window, bind_options),) = portal.binds
        assert session.startswith("/org/freedesktop/portal/desktop/session/")
        assert shortcuts == [
            (SHORTCUT_ID, {"description": ("s", DESCRIPTION), "preferred_trigger": ("s", "CTRL+ALT+o")})
        ]
        assert parent_window == "" and "handle_token" in bind_options
        assert shortcut.bound_as == "CTRL+ALT+o"
        portal.activate(SHORTCUT_ID)
        assert pressed.wait(10)
    finally:
        shortcut.stop()
    assert not shortcut.is_alive()
    assert _eventually(lambda: portal.closed == [session])


def test_only_the_bound_session_and_id_call_back(bus: str, request: pytest.FixtureRequest) -> None:
    portal = serve(bus, request)
    calls: list[str] = []
    done = threading.Event()
    shortcut = PortalShortcut(["ctrl"], "f9", lambda: (calls.append("x"), done.set()), bus=bus, timeout_s=10)
    shortcut.start()
    try:
        portal.activate("something-else")
        portal.activate(SHORTCUT_ID, session="/org/freedesktop/portal/desktop/session/other/x")
        portal.activate(SHORTCUT_ID)
        assert done.wait(10)
    finally:
        shortcut.stop()
    assert calls == ["x"]  # signals are delivered in order: the two others came first and were ignored


def test_activated_starts_a_capture_through_the_hotkey_listener(
    qtbot: Any, wayland: str, request: pytest.FixtureRequest
) -> None:
    portal = serve(wayland, request)
    assert HotkeyListener.available() == (True, "")
    listener = HotkeyListener()
    captures: list[str] = []
    listener.activated.connect(lambda: captures.append("capture"))
    assert listener.start("<ctrl>+<alt>+o"), listener.error
    try:
        assert listener.running and listener.hotkey == "<ctrl>+<alt>+o"
        assert portal.binds[0][1][0][1]["preferred_trigger"] == ("s", "CTRL+ALT+o")
        with qtbot.waitSignal(listener.activated, timeout=10_000):
            portal.activate()
        assert captures == ["capture"]
    finally:
        listener.stop()


@pytest.mark.parametrize("offer", [False, None], ids=["without-the-interface", "no-portal"])
def test_a_portal_without_globalshortcuts_gives_the_fallback(
    qapp: Any, wayland: str, request: pytest.FixtureRequest, offer: bool | None
) -> None:
    if offer is not None:
        serve(wayland, request, globalshortcuts=offer)
    version, reason = portal_version(wayland)
    assert version == 0 and "global shortcuts" in reason
    assert ("has no xdg-desktop-portal" in reason) == (offer is None)
    ok, message = HotkeyListener.available()
    assert not ok and "Wayland" in message and "`textdrop capture`" in message
    listener = HotkeyListener()
    assert not listener.start("<ctrl>+<alt>+o") and listener.error == message
    assert not listener.running


def test_a_refused_bind_gives_the_fallback_and_closes_the_session(
    qapp: Any, wayland: str, request: pytest.FixtureRequest
) -> None:
    portal = serve(wayland, request, bind_code=1)
    listener = HotkeyListener()
    assert not listener.start("<ctrl>+<alt>+o")
    assert "CTRL+ALT+o" in listener.error and "cancelled" in listener.error
    assert "`textdrop capture`" in listener.error and not listener.running
    ((session, _shortcuts, _parent, _options),) = portal.binds
    assert _eventually(lambda: portal.closed == [session])


def test_a_refused_session_says_why(qapp: Any, wayland: str, request: pytest.FixtureRequest) -> None:
    error = ("org.freedesktop.portal.Error.NotAllowed", "An app id is required")
    portal = serve(wayland, request, session_error=error)
    listener = HotkeyListener()
    assert not listener.start("<ctrl>+<alt>+o")
    assert "org.freedesktop.portal.Error.NotAllowed: An app id is required" in listener.error
    assert "`textdrop capture`" in listener.error and not listener.running
    assert len(portal.sessions) == 1 and not portal.binds


def _eventually(check: Any, timeout_s: float = 10.0) -> bool:
    """Poll ``check`` until true (the fake portal reads its bus in a thread of its own)."""
    import time

    deadline = time.monotonic() + timeout_s
    while not check():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True
