"""A global hotkey on Windows: ``RegisterHotKey``, so the focused application does not receive the key.

Windows posts ``WM_HOTKEY`` to the message queue of the thread that registered the hotkey (no window is
needed), and keeps the key from the focused application. :class:`WinHotKey` registers it in a thread of
its own that runs a message loop, calls back on each ``WM_HOTKEY``, and unregisters it when
:meth:`~WinHotKey.stop` posts ``WM_QUIT`` to that thread. ``MOD_NOREPEAT`` keeps a held key from firing
again. See ``docs/adr/012-tray-usability.md``.

The Win32 calls go through ctypes (``user32``, ``kernel32``); both are looked up only in :meth:`start`,
so the module imports on every platform, and the tests drive it with a stand-in for the two DLLs.
"""

from __future__ import annotations

import ctypes
import logging
import threading
from collections.abc import Callable
from ctypes import wintypes
from typing import Any

from textdrop.desktop.capture.xgrab import GrabError

log = logging.getLogger(__name__)

WM_HOTKEY = 0x0312
WM_QUIT = 0x0012
MOD_ALT, MOD_CONTROL, MOD_SHIFT, MOD_WIN, MOD_NOREPEAT = 0x1, 0x2, 0x4, 0x8, 0x4000
ERROR_HOTKEY_ALREADY_REGISTERED = 1409
HOTKEY_ID = 0x7E57
"""The id textdrop registers its hotkey under (any value in 0x0000–0xBFFF for an application)."""

MODIFIER_FLAGS = {
    "ctrl": MOD_CONTROL,
    "alt": MOD_ALT,
    "shift": MOD_SHIFT,
    "cmd": MOD_WIN,
    "alt_gr": MOD_CONTROL | MOD_ALT,  # Windows reports AltGr as Ctrl+Alt
}
"""pynput modifier names → ``RegisterHotKey`` modifier flags."""
VIRTUAL_KEYS = {
    "backspace": 0x08,
    "tab": 0x09,
    "enter": 0x0D,
    "pause": 0x13,
    "caps_lock": 0x14,
    "esc": 0x1B,
    "space": 0x20,
    "page_up": 0x21,
    "page_down": 0x22,
    "end": 0x23,
    "home": 0x24,
    "left": 0x25,
    "up": 0x26,
    "right": 0x27,
    "down": 0x28,
    "print_screen": 0x2C,
    "insert": 0x2D,
    "delete": 0x2E,
    "menu": 0x5D,
    "num_lock": 0x90,
    "scroll_lock": 0x91,
    "media_volume_mute": 0xAD,
    "media_volume_down": 0xAE,
    "media_volume_up": 0xAF,
    "media_next": 0xB0,
    "media_previous": 0xB1,
    "media_play_pause": 0xB3,
}
"""pynput key names → Windows virtual-key codes (``WinUser.h``); letters, digits and F-keys are computed."""


def virtual_key(key: str, user32: Any = None) -> int:
    """The virtual-key code of pynput key name ``key`` (``"o"`` → 0x4F, ``"f9"`` → 0x78).

    Other printable characters are looked up in the keyboard layout with ``VkKeyScanW`` (``user32``).

    Raises:
        GrabError: the key has no virtual-key code on this keyboard layout.
    """
    if key in VIRTUAL_KEYS:
        return VIRTUAL_KEYS[key]
    if len(key) == 1 and (key.isascii() and key.isalnum()):
        return ord(key.upper())  # VK_A… = "A"…, VK_0… = "0"…
    if key.startswith("f") and key[1:].isdigit() and 1 <= int(key[1:]) <= 24:
        return 0x6F + int(key[1:])  # VK_F1 = 0x70
    if len(key) == 1 and user32 is not None:
        scan = user32.VkKeyScanW(ord(key))
        if scan != -1 and scan & 0xFF != 0xFF:
            return scan & 0xFF
    raise GrabError(f"The key {key!r} is not on this keyboard layout; choose another hotkey.")


class WinHotKey:
    """Registers one hotkey in a message-loop thread of its own; calls ``callback`` (in that thread) on each
    press.

    Args:
        modifiers: pynput modifier names (``ctrl``, ``alt``, ``alt_gr``, ``shift``, ``cmd``).
        key: one pynput key name (``o``, ``f9``, ``print_screen``).
        callback: called with no arguments from the hotkey thread.
        dlls: ``(user32, kernel32)``; default ``ctypes.windll``'s (tests pass stand-ins).
    """

    def __init__(
        self,
        modifiers: list[str],
        key: str,
        callback: Callable[[], None],
        dlls: tuple[Any, Any] | None = None,
    ) -> None:
        self._modifiers = modifiers
        self._key = key
        self._callback = callback
        self._dlls = dlls
        self._thread: threading.Thread | None = None
        self._thread_id = 0
        self._ready = threading.Event()
        self._error: GrabError | None = None

    def start(self, timeout_s: float = 2.0) -> None:
        """Register the hotkey and start the message loop; returns once it is registered.

        Raises:
            GrabError: another program holds the combination, the key is not on the layout, or the thread
                did not start in ``timeout_s`` seconds.
        """
        user32, kernel32 = self._dlls or (ctypes.windll.user32, ctypes.windll.kernel32)  # type: ignore[attr-defined]
        flags = MOD_NOREPEAT
        for name in self._modifiers:
            flags |= MODIFIER_FLAGS[name]
        vk = virtual_key(self._key, user32)
        self._thread = threading.Thread(
            target=self._run, args=(user32, kernel32, flags, vk), name="textdrop-hotkey", daemon=True
        )
        self._thread.start()
        if not self._ready.wait(timeout_s):
            raise GrabError("The hotkey thread did not start; see the log for why.")
        if self._error is not None:
            self._thread.join(timeout_s)
            self._thread = None
            raise self._error

    def stop(self) -> None:
        """Unregister the hotkey and end the thread (it has ended when this returns). Idempotent."""
        thread, self._thread = self._thread, None
        if thread is None:
            return
        user32, _ = self._dlls or (ctypes.windll.user32, None)  # type: ignore[attr-defined]
        user32.PostThreadMessageW(self._thread_id, WM_QUIT, 0, 0)
        thread.join(2.0)

    def is_alive(self) -> bool:
        """Whether the message-loop thread runs."""
        return self._thread is not None and self._thread.is_alive()

    def _run(self, user32: Any, kernel32: Any, flags: int, vk: int) -> None:
        self._thread_id = kernel32.GetCurrentThreadId()
        if not user32.RegisterHotKey(None, HOTKEY_ID, flags, vk):
            code = kernel32.GetLastError()
            if code == ERROR_HOTKEY_ALREADY_REGISTERED:
                message = (
                    "Another program already uses this hotkey; choose another one in Settings, or free it "
                    "in that program."
                )
            else:
                message = f"Windows refused the hotkey (error {code}); choose another one in Settings."
            self._error = GrabError(message)
            self._ready.set()
            return
        self._ready.set()
        msg = wintypes.MSG()
        try:
            while user32.GetMessageW(ctypes.byref(msg), None, 0, 0) > 0:
                if msg.message == WM_HOTKEY and msg.wParam == HOTKEY_ID:
                    self._callback()
        finally:
            user32.UnregisterHotKey(None, HOTKEY_ID)
