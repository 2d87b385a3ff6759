"""A global hotkey on X11 as a passive key grab (``XGrabKey``): the focused application never sees the key.

pynput's listener reads keys through the RECORD extension, which only observes: the focused window gets
the key as well (Ctrl+Alt+T opened a terminal on Ubuntu while textdrop captured). A passive grab on every
screen's root window makes the X server deliver the key to us alone. NumLock, CapsLock and ScrollLock
change the modifier state, so the grab is repeated for every combination of them (as every X11 hotkey
daemon does). See ``docs/adr/012-tray-usability.md``.

The grab fires on the key's release: while a passive grab is active the X server holds the keyboard for
us until that key is released, and the capture overlay must be able to grab the keyboard itself (Esc).

python-xlib is imported only here (it comes with pynput on Linux).
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import os
import select
import threading
from collections.abc import Callable
from typing import Any

log = logging.getLogger(__name__)

_KEYSYM_NAMES = {
    "esc": "Escape",
    "enter": "Return",
    "backspace": "BackSpace",
    "delete": "Delete",
    "tab": "Tab",
    "space": "space",
    "insert": "Insert",
    "home": "Home",
    "end": "End",
    "page_up": "Prior",
    "page_down": "Next",
    "up": "Up",
    "down": "Down",
    "left": "Left",
    "right": "Right",
    "menu": "Menu",
    "pause": "Pause",
    "print_screen": "Print",
    "scroll_lock": "Scroll_Lock",
    "num_lock": "Num_Lock",
    "caps_lock": "Caps_Lock",
    "media_play_pause": "XF86AudioPlay",
    "media_volume_mute": "XF86AudioMute",
    "media_volume_down": "XF86AudioLowerVolume",
    "media_volume_up": "XF86AudioRaiseVolume",
    "media_previous": "XF86AudioPrev",
    "media_next": "XF86AudioNext",
}
"""pynput key names (as :func:`~textdrop.desktop.capture.hotkey.parse_hotkey` writes them) → X keysym names;
F-keys and single characters map by themselves."""


class GrabError(Exception):
    """The hotkey cannot be grabbed; the message says why and what to do."""


def keysym_name(key: str) -> str:
    """The X (and xkb) keysym name of a pynput key name: ``f9`` → ``F9``, ``esc`` → ``Escape``, ``t``."""
    if key in _KEYSYM_NAMES:
        return _KEYSYM_NAMES[key]
    if key.startswith("f") and key[1:].isdigit():
        return key.upper()
    return key


class XKeyGrab:
    """Grabs one hotkey on an X display in a thread of its own; calls ``callback`` (in that thread) on
    each press-and-release of the key.

    Args:
        modifiers: pynput modifier names (``ctrl``, ``alt``, ``alt_gr``, ``shift``, ``cmd``).
        key: one pynput key name (``t``, ``f9``, ``print_screen``).
        callback: called with no arguments from the grab thread.
        display_name: the X display (default ``$DISPLAY``).

    Raises:
        GrabError: from :meth:`start`: no X display, a key this keyboard lacks, or another program holds
            the combination already.
    """

    def __init__(
        self, modifiers: list[str], key: str, callback: Callable[[], None], display_name: str | None = None
    ) -> None:
        self._modifiers = modifiers
        self._key = key
        self._callback = callback
        self._display_name = display_name or os.environ.get("DISPLAY", "")
        self._display: Any = None
        self._thread: threading.Thread | None = None
        self._wake_r, self._wake_w = -1, -1
        self._keycode = 0
        self._pressed = False

    def start(self) -> None:
        """Grab the key on every screen and start the thread. Raises :class:`GrabError`."""
        from Xlib import XK, X, error
        from Xlib import display as xdisplay

        try:
            display = xdisplay.Display(self._display_name or None)
        except (error.DisplayError, OSError) as exc:
            raise GrabError(f"Cannot reach the X display {self._display_name!r} ({exc}).") from exc
        keysym = XK.string_to_keysym(keysym_name(self._key))
        keycode = display.keysym_to_keycode(keysym) if keysym else 0
        if not keycode:
            display.close()
            raise GrabError(f"This keyboard has no {self._key!r} key; choose another hotkey.")
        mask = self._mask(display)
        failures: list[Any] = []
        display.set_error_handler(lambda err, *_: failures.append(err))
        ignored = self._lock_masks(display)
        roots = [display.screen(n).root for n in range(display.screen_count())]
        for root, extra in itertools.product(roots, ignored):
            root.grab_key(keycode, mask | extra, True, X.GrabModeAsync, X.GrabModeAsync)
        display.sync()  # a BadAccess (someone else holds the combination) arrives here
        if failures:
            for root, extra in itertools.product(roots, ignored):
                root.ungrab_key(keycode, mask | extra)
            display.close()
            raise GrabError(
                "Another program already uses this hotkey (the X server refused the key grab); choose "
                "another one in Settings, or free it in that program."
            )
        self._display, self._keycode = display, keycode
        self._wake_r, self._wake_w = os.pipe()
        self._thread = threading.Thread(target=self._run, name="textdrop-hotkey", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Release the grab and end the thread (it has ended when this returns). Idempotent."""
        thread, self._thread = self._thread, None
        if thread is None:
            return
        os.write(self._wake_w, b"x")
        thread.join(2.0)
        for fd in (self._wake_r, self._wake_w):
            os.close(fd)
        with contextlib.suppress(Exception):
            self._display.close()  # closing the connection releases its grabs
        self._display = None

    def is_alive(self) -> bool:
        """Whether the grab thread runs."""
        return self._thread is not None and self._thread.is_alive()

    def _mask(self, display: Any) -> int:
        from Xlib import X

        masks = {
            "ctrl": X.ControlMask,
            "shift": X.ShiftMask,
            "alt": self._modifier_mask(display, ("Alt_L", "Alt_R"), X.Mod1Mask),
            "cmd": self._modifier_mask(display, ("Super_L", "Super_R"), X.Mod4Mask),
            "alt_gr": self._modifier_mask(display, ("ISO_Level3_Shift", "Mode_switch"), X.Mod5Mask),
        }
        mask = 0
        for name in self._modifiers:
            mask |= masks[name]
        return mask

    @staticmethod
    def _modifier_mask(display: Any, keysym_names: tuple[str, ...], default: int) -> int:
        """The modifier bit (Mod1…Mod5) the keyboard's modifier map gives the first of ``keysym_names``."""
        from Xlib import XK

        codes = {display.keysym_to_keycode(XK.string_to_keysym(name)) for name in keysym_names} - {0}
        for index, keycodes in enumerate(display.get_modifier_mapping()):
            if codes & set(keycodes) and index >= 3:  # Shift, Lock, Control come first
                return 1 << index
        return default

    def _lock_masks(self, display: Any) -> list[int]:
        """Every combination of CapsLock, NumLock and ScrollLock bits, so the grab works whatever is on."""
        from Xlib import X

        locks = [X.LockMask]
        for name in ("Num_Lock", "Scroll_Lock"):
            bit = self._modifier_mask(display, (name,), 0)
            if bit:
                locks.append(bit)
        masks = set()
        for count in range(len(locks) + 1):
            for combo in itertools.combinations(locks, count):
                value = 0
                for bit in combo:
                    value |= bit
                masks.add(value)
        return sorted(masks)

    def _run(self) -> None:
        from Xlib import X

        display = self._display
        while True:
            ready, _, _ = select.select([display.fileno(), self._wake_r], [], [])
            if self._wake_r in ready:
                return
            try:
                while display.pending_events():
                    event = display.next_event()
                    if getattr(event, "detail", None) != self._keycode:
                        continue
                    if event.type == X.KeyPress:
                        self._pressed = True
                    elif event.type == X.KeyRelease and self._pressed:
                        self._pressed = False
                        self._callback()
            except Exception:  # the X connection broke: no hotkey until it is set again
                log.exception("the hotkey grab stopped")
                return
