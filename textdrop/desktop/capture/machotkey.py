"""A global hotkey on macOS: Carbon's ``RegisterEventHotKey``, so the focused application does not receive
the key and no Accessibility permission is needed.

The Carbon Event Manager delivers ``kEventHotKeyPressed`` to the handler installed on the application's
event target; Qt's Cocoa event loop dispatches it on the main (GUI) thread, so :class:`CarbonHotKey` needs
no thread of its own. Hot keys are given as virtual key codes, which name a key's position on an ANSI
keyboard (``Events.h``, ``kVK_*``), and Carbon modifier bits (``cmdKey``, ``shiftKey``, ``optionKey``,
``controlKey``). See ``docs/adr/012-tray-usability.md``.

The calls go through ctypes; the Carbon framework is loaded only in :meth:`CarbonHotKey.start`, so the module
imports on every platform, and the tests drive it with a stand-in for the framework.
"""

from __future__ import annotations

import ctypes
import logging
from collections.abc import Callable
from typing import Any

from textdrop.desktop.capture.xgrab import GrabError

log = logging.getLogger(__name__)

CARBON_PATH = "/System/Library/Frameworks/Carbon.framework/Carbon"
CMD_KEY, SHIFT_KEY, OPTION_KEY, CONTROL_KEY = 1 << 8, 1 << 9, 1 << 11, 1 << 12
"""Carbon modifier bits (``Events.h``: ``cmdKey``, ``shiftKey``, ``optionKey``, ``controlKey``)."""
EVENT_CLASS_KEYBOARD = int.from_bytes(b"keyb", "big")
EVENT_HOTKEY_PRESSED = 5
EVENT_HOTKEY_EXISTS = -9878
"""``eventHotKeyExistsErr``: another application registered the same combination."""
SIGNATURE = int.from_bytes(b"txdp", "big")
"""The four-character code textdrop's hot key is registered under."""

MODIFIER_FLAGS = {
    "ctrl": CONTROL_KEY,
    "alt": OPTION_KEY,
    "alt_gr": OPTION_KEY,
    "shift": SHIFT_KEY,
    "cmd": CMD_KEY,
}
"""pynput modifier names → Carbon modifier bits (macOS has no AltGr: Option plays its part)."""
KEY_CODES = {
    **dict(zip("asdfhgzxcv", range(0x00, 0x0A), strict=True)),
    **dict(zip("bqwerty123465", range(0x0B, 0x18), strict=True)),
    "=": 0x18, "9": 0x19, "7": 0x1A, "-": 0x1B, "8": 0x1C, "0": 0x1D, "]": 0x1E, "o": 0x1F, "u": 0x20,
    "[": 0x21, "i": 0x22, "p": 0x23, "enter": 0x24, "l": 0x25, "j": 0x26, "'": 0x27, "k": 0x28, ";": 0x29,
    "\\": 0x2A, ",": 0x2B, "/": 0x2C, "n": 0x2D, "m": 0x2E, ".": 0x2F, "tab": 0x30, "space": 0x31, "`": 0x32,
    "backspace": 0x33, "esc": 0x35, "f17": 0x40, "f18": 0x4F, "f19": 0x50, "f20": 0x5A, "f5": 0x60,
    "f6": 0x61, "f7": 0x62, "f3": 0x63, "f8": 0x64, "f9": 0x65, "f11": 0x67, "f13": 0x69, "f16": 0x6A,
    "f14": 0x6B, "f10": 0x6D, "f12": 0x6F, "f15": 0x71, "home": 0x73, "page_up": 0x74, "delete": 0x75,
    "f4": 0x76, "end": 0x77, "f2": 0x78, "page_down": 0x79, "f1": 0x7A, "left": 0x7B, "right": 0x7C,
    "down": 0x7D, "up": 0x7E,
}  # fmt: skip
"""pynput key names → virtual key codes (``Events.h``, ``kVK_ANSI_*`` and the layout-independent keys)."""


def key_code(key: str) -> int:
    """The virtual key code of pynput key name ``key`` (``"o"`` → 0x1F, ``"f1"`` → 0x7A).

    Raises:
        GrabError: the key has no virtual key code (a character only some layouts have).
    """
    code = KEY_CODES.get(key.lower())
    if code is None:
        raise GrabError(f"The key {key!r} cannot be a global hotkey on macOS; choose another hotkey.")
    return code


class EventTypeSpec(ctypes.Structure):
    _fields_ = [("eventClass", ctypes.c_uint32), ("eventKind", ctypes.c_uint32)]


class EventHotKeyID(ctypes.Structure):
    _fields_ = [("signature", ctypes.c_uint32), ("id", ctypes.c_uint32)]


EventHandler = ctypes.CFUNCTYPE(ctypes.c_int32, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p)
"""``EventHandlerProcPtr``: (call ref, event, user data) → ``OSStatus``."""


def _carbon() -> Any:
    """The Carbon framework with the signatures of the calls used here."""
    carbon = ctypes.CDLL(CARBON_PATH)
    ref = ctypes.POINTER(ctypes.c_void_p)
    carbon.GetApplicationEventTarget.restype = ctypes.c_void_p
    carbon.GetApplicationEventTarget.argtypes = []
    carbon.InstallEventHandler.restype = ctypes.c_int32
    carbon.InstallEventHandler.argtypes = [
        ctypes.c_void_p, EventHandler, ctypes.c_ulong, ctypes.POINTER(EventTypeSpec), ctypes.c_void_p, ref
    ]  # fmt: skip
    carbon.RegisterEventHotKey.restype = ctypes.c_int32
    carbon.RegisterEventHotKey.argtypes = [
        ctypes.c_uint32, ctypes.c_uint32, EventHotKeyID, ctypes.c_void_p, ctypes.c_uint32, ref
    ]  # fmt: skip
    carbon.UnregisterEventHotKey.restype = ctypes.c_int32
    carbon.UnregisterEventHotKey.argtypes = [ctypes.c_void_p]
    carbon.RemoveEventHandler.restype = ctypes.c_int32
    carbon.RemoveEventHandler.argtypes = [ctypes.c_void_p]
    return carbon


class CarbonHotKey:
    """One hot key registered with the Carbon Event Manager; calls ``callback`` (on the GUI thread) on each
    press.

    Args:
        modifiers: pynput modifier names (``ctrl``, ``alt``, ``alt_gr``, ``shift``, ``cmd``).
        key: one pynput key name (``o``, ``2``, ``f9``).
        callback: called with no arguments from the event loop.
        carbon: the Carbon framework; default the system's (tests pass a stand-in).
    """

    def __init__(
        self, modifiers: list[str], key: str, callback: Callable[[], None], carbon: Any = None
    ) -> None:
        self._modifiers = modifiers
        self._key = key
        self._callback = callback
        self._carbon = carbon
        self._handler: Any = None  # the ctypes callback: kept alive while installed
        self._handler_ref = ctypes.c_void_p()
        self._hotkey_ref = ctypes.c_void_p()

    def start(self) -> None:
        """Install the event handler and register the hot key.

        Raises:
            GrabError: another application holds the combination, the key has no key code, or Carbon
                refused (its status code is in the message).
        """
        flags = 0
        for name in self._modifiers:
            flags |= MODIFIER_FLAGS[name]
        code = key_code(self._key)
        if self._carbon is None:
            self._carbon = _carbon()
        carbon = self._carbon
        target = carbon.GetApplicationEventTarget()
        self._handler = EventHandler(self._on_event)
        spec = EventTypeSpec(EVENT_CLASS_KEYBOARD, EVENT_HOTKEY_PRESSED)
        status = carbon.InstallEventHandler(
            target, self._handler, 1, ctypes.pointer(spec), None, ctypes.pointer(self._handler_ref)
        )
        if status != 0:
            self._handler = None
            raise GrabError(f"macOS refused the hotkey's event handler (status {status}); see the log.")
        status = carbon.RegisterEventHotKey(
            code, flags, EventHotKeyID(SIGNATURE, 1), target, 0, ctypes.pointer(self._hotkey_ref)
        )
        if status != 0:
            self.stop()
            if status == EVENT_HOTKEY_EXISTS:
                raise GrabError(
                    "Another application already uses this hotkey; choose another one in Settings, or free "
                    "it in that application."
                )
            raise GrabError(f"macOS refused the hotkey (status {status}); choose another one in Settings.")

    def stop(self) -> None:
        """Unregister the hot key and remove the handler. Idempotent."""
        if self._hotkey_ref.value:
            self._carbon.UnregisterEventHotKey(self._hotkey_ref)
            self._hotkey_ref = ctypes.c_void_p()
        if self._handler_ref.value:
            self._carbon.RemoveEventHandler(self._handler_ref)
            self._handler_ref = ctypes.c_void_p()
        self._handler = None

    def is_alive(self) -> bool:
        """Whether the hot key is registered."""
        return bool(self._hotkey_ref.value)

    def _on_event(self, _call: Any, _event: Any, _data: Any) -> int:
        try:
            self._callback()
        except Exception:  # an exception must not cross into Carbon's C frames
            log.exception("the hotkey callback failed")
        return 0  # noErr: handled
