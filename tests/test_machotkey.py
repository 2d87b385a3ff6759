"""The macOS hot key (Carbon ``RegisterEventHotKey``) through a stand-in for the Carbon framework: the
codes and bits it registers, the handler it installs, what a press does, and what it says when refused.
macOS itself cannot run here."""

from __future__ import annotations

import ctypes
from typing import Any

import pytest

from textdrop.desktop.capture import machotkey
from textdrop.desktop.capture.machotkey import CarbonHotKey, key_code
from textdrop.desktop.capture.xgrab import GrabError


class FakeCarbon:
    """Records the calls; hands out references; ``register_status`` is what RegisterEventHotKey returns."""

    def __init__(self, register_status: int = 0) -> None:
        self.register_status = register_status
        self.calls: list[tuple[Any, ...]] = []
        self.handler: Any = None

    def GetApplicationEventTarget(self) -> int:
        return 0xA11

    def InstallEventHandler(self, target, handler, count, specs, data, out) -> int:
        spec = specs.contents
        self.calls.append(("install", target, count, spec.eventClass, spec.eventKind))
        self.handler = handler
        out.contents.value = 0xB0B
        return 0

    def RegisterEventHotKey(self, code, modifiers, hotkey_id, target, options, out) -> int:
        self.calls.append(("register", code, modifiers, hotkey_id.signature, target, options))
        if self.register_status == 0:
            out.contents.value = 0xC0C
        return self.register_status

    def UnregisterEventHotKey(self, ref) -> int:
        self.calls.append(("unregister", ref.value))
        return 0

    def RemoveEventHandler(self, ref) -> int:
        self.calls.append(("remove", ref.value))
        return 0


@pytest.mark.parametrize(
    ("key", "code"),
    [("a", 0x00), ("o", 0x1F), ("O", 0x1F), ("2", 0x13), ("5", 0x17), ("f1", 0x7A), ("space", 0x31)],
)
def test_keys_map_to_their_ansi_virtual_key_codes(key: str, code: int) -> None:
    assert (
        key_code(key) == code
    )  # Events.h: kVK_ANSI_A, kVK_ANSI_O, kVK_ANSI_2, kVK_ANSI_5, kVK_F1, kVK_Space


def test_a_key_without_a_code_is_refused_with_advice() -> None:
    with pytest.raises(GrabError, match="choose another hotkey"):
        key_code("é")


def test_the_default_hotkey_registers_cmd_shift_2_and_a_press_calls_back() -> None:
    carbon, pressed = FakeCarbon(), []
    hotkey = CarbonHotKey(["cmd", "shift"], "2", lambda: pressed.append(True), carbon=carbon)
    hotkey.start()
    assert carbon.calls == [
        ("install", 0xA11, 1, int.from_bytes(b"keyb", "big"), 5),  # kEventClassKeyboard, kEventHotKeyPressed
        ("register", 0x13, 0x100 | 0x200, int.from_bytes(b"txdp", "big"), 0xA11, 0),  # cmdKey | shiftKey
    ]
    assert hotkey.is_alive()
    assert carbon.handler(None, None, None) == 0  # what Carbon does on a press
    assert pressed == [True]
    hotkey.stop()
    assert carbon.calls[2:] == [("unregister", 0xC0C), ("remove", 0xB0B)]
    assert not hotkey.is_alive()
    hotkey.stop()  # idempotent
    assert len(carbon.calls) == 4


def test_ctrl_and_alt_become_control_and_option() -> None:
    carbon = FakeCarbon()
    CarbonHotKey(["ctrl", "alt"], "o", lambda: None, carbon=carbon).start()
    assert carbon.calls[1][1:3] == (0x1F, 0x1000 | 0x800)  # controlKey | optionKey


def test_a_combination_another_application_holds_is_reported_and_nothing_stays_installed() -> None:
    carbon = FakeCarbon(register_status=machotkey.EVENT_HOTKEY_EXISTS)
    hotkey = CarbonHotKey(["cmd", "shift"], "2", lambda: None, carbon=carbon)
    with pytest.raises(GrabError, match="Another application already uses this hotkey"):
        hotkey.start()
    assert carbon.calls[-1] == ("remove", 0xB0B) and not hotkey.is_alive()


def test_a_failing_callback_does_not_reach_carbon(caplog: pytest.LogCaptureFixture) -> None:
    carbon = FakeCarbon()

    def fail() -> None:
        raise RuntimeError("boom")

    CarbonHotKey(["cmd"], "o", fail, carbon=carbon).start()
    assert carbon.handler(None, None, None) == 0
    assert "the hotkey callback failed" in caplog.text


def test_the_handler_type_is_carbons_signature() -> None:
    assert machotkey.EventHandler._restype_ is ctypes.c_int32
    assert machotkey.EventHandler._argtypes_ == (ctypes.c_void_p,) * 3


def test_the_listener_registers_a_carbon_hot_key_on_macos(
    qtbot: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from textdrop.desktop.capture import hotkey as hotkey_module
    from textdrop.desktop.capture.hotkey import HotkeyListener

    hotkey_module._pynput_keyboard()  # imported here, with this platform's backend, before the switch
    carbon = FakeCarbon()
    monkeypatch.setattr(machotkey, "_carbon", lambda: carbon)
    monkeypatch.setattr(hotkey_module, "is_wayland", lambda: False)
    monkeypatch.setattr(hotkey_module.sys, "platform", "darwin")
    assert HotkeyListener.available() == (True, "")  # no Accessibility permission to ask for
    listener = HotkeyListener()
    assert listener.start("⌘⇧2"), listener.error
    monkeypatch.undo()  # the rest runs on this platform again; the stand-in stays with the hot key
    assert listener.running and listener.hotkey == "<shift>+<cmd>+2"
    assert carbon.calls[1][:3] == ("register", 0x13, 0x100 | 0x200)
    with qtbot.waitSignal(listener.activated, timeout=5000):
        carbon.handler(None, None, None)
    listener.stop()
    assert not listener.running and [call[0] for call in carbon.calls[2:]] == ["unregister", "remove"]
