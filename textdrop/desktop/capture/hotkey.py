"""The global capture hotkey, heard as a Qt signal: a key grab on X11, a registered hot key on Windows and
macOS, a portal shortcut on Wayland.

On X11 the key is grabbed (:mod:`.xgrab`, ``XGrabKey``), on Windows registered (:mod:`.winhotkey`,
``RegisterHotKey``), on macOS registered with the Carbon Event Manager (:mod:`.machotkey`,
``RegisterEventHotKey``) and on Wayland bound through the xdg-desktop-portal GlobalShortcuts interface
(:mod:`.globalshortcuts`), so the focused application does not receive it (see
``docs/adr/012-tray-usability.md``).

Hotkeys use pynput's syntax: keys joined by ``+``, special keys in angle brackets, e.g. ``<ctrl>+<alt>+t``
or ``<cmd>+<shift>+2`` (:func:`parse_hotkey` checks it; :func:`display_hotkey` writes it for menus).

Where global hotkeys cannot work, :meth:`HotkeyListener.available` says why and what to do instead:

- **Wayland** without the GlobalShortcuts portal (or where the user refuses the shortcut): apps cannot grab
  keys; bind a desktop shortcut to ``textdrop capture``.
- **X11, Windows, macOS**: another program may hold the key combination already (it is refused).

pynput (which knows the key names) is imported only when needed: importing it without a reachable X server
raises ImportError.
"""

from __future__ import annotations

import logging
import os
import sys
from typing import Any

from PySide6.QtCore import QObject, Qt, Signal, Slot

from textdrop.desktop.capture.screens import is_wayland

log = logging.getLogger(__name__)

MODIFIERS = ("ctrl", "alt", "alt_gr", "shift", "cmd")
"""pynput's modifier names, in the order hotkeys are written and shown."""
_SIDED = {f"{name}_{side}": name for name in ("ctrl", "alt", "shift", "cmd") for side in ("l", "r")}
"""pynput matches ``<ctrl_l>`` in a hotkey only as a plain key, never as Ctrl; we write ``<ctrl>``."""
_OTHER_KEYS = (
    "backspace caps_lock delete down end enter esc home left page_down page_up right space tab up "
    "media_play_pause media_volume_mute media_volume_down media_volume_up media_previous media_next "
    "insert menu num_lock pause print_screen scroll_lock"
)
KEY_NAMES = frozenset([*MODIFIERS, *_SIDED, *(f"f{n}" for n in range(1, 21)), *_OTHER_KEYS.split()])
"""The names pynput knows in angle brackets (``pynput.keyboard.Key``; a few are missing on macOS)."""
_TYPING_KEYS = frozenset(
    {"space", "tab", "enter", "backspace", "delete", "esc", "insert"}
    | {"up", "down", "left", "right", "home", "end", "page_up", "page_down"}
)
"""Keys used while typing: as a hotkey they need Ctrl, Alt or Cmd, or every press would capture."""
_EXAMPLE = "write keys joined by '+', special keys in angle brackets, e.g. <ctrl>+<alt>+t or <cmd>+<shift>+2"

_PLAIN_NAMES = {"ctrl": "Ctrl", "alt": "Alt", "alt_gr": "AltGr", "shift": "Shift", "esc": "Esc"}
_MAC_NAMES = {
    "ctrl": "⌃",
    "alt": "⌥",
    "alt_gr": "⌥",
    "shift": "⇧",
    "cmd": "⌘",
    "enter": "↩",
    "esc": "⎋",
    "tab": "⇥",
    "backspace": "⌫",
    "delete": "⌦",
    "up": "↑",
    "down": "↓",
    "left": "←",
    "right": "→",
}


def parse_hotkey(hotkey: str) -> str:
    """Check a hotkey written in pynput's syntax and return it in canonical form.

    Canonical: lower case, modifiers first in the order of :data:`MODIFIERS`, side-specific modifiers
    (``<ctrl_l>``) written as the plain one (pynput would never match them as modifiers). When pynput can
    be imported here, its own ``HotKey.parse`` must accept the result too.

    Args:
        hotkey: E.g. ``"<ctrl>+<alt>+t"``.

    Returns:
        E.g. ``"<ctrl>+<alt>+t"``.

    Raises:
        ValueError: The syntax is wrong, a key name is unknown, a key repeats, there is no key besides
            modifiers, or a typing key (a letter, Space, Enter...) lacks Ctrl, Alt or Cmd.
    """
    text = hotkey.strip()
    invalid = f"{hotkey!r} is not a valid hotkey"
    if not text:
        raise ValueError(f"No hotkey given: {_EXAMPLE}.")
    modifiers: list[str] = []
    keys: list[str] = []
    for part in _split(_expand_symbols(text)):
        alias = _ALIASES.get(part.strip().lower().replace(" ", "_"))
        if alias is not None or (part.strip().lower().replace(" ", "_") in KEY_NAMES):
            part = f"<{alias or part.strip().lower().replace(' ', '_')}>"  # "Ctrl", "F9", "Print Screen"
        if len(part) == 1:
            name = part.lower()
            if name.isspace():
                raise ValueError(f"{invalid}: write a space as <space>; {_EXAMPLE}.")
        elif len(part) > 2 and part[0] == "<" and part[-1] == ">":
            name = part[1:-1].lower()
            name = _SIDED.get(name, name)
            if name not in KEY_NAMES and not name.isdigit():
                raise ValueError(f"{invalid}: {part!r} is not a key pynput knows; {_EXAMPLE}.")
        else:
            raise ValueError(f"{invalid}: {part!r} is not a key; {_EXAMPLE}.")
        target = modifiers if name in MODIFIERS else keys
        if name in modifiers or name in keys:
            raise ValueError(f"{invalid}: {part!r} appears twice.")
        target.append(name)
    if not keys:
        raise ValueError(f"{invalid}: it needs a key besides the modifiers; {_EXAMPLE}.")
    typing = any(len(key) == 1 or key in _TYPING_KEYS for key in keys)
    if typing and not set(modifiers) & {"ctrl", "alt", "cmd"}:
        raise ValueError(
            f"{hotkey!r} would fire while you type: add <ctrl>, <alt> or <cmd>, or use a key such as <f9>."
        )
    modifiers.sort(key=MODIFIERS.index)
    canonical = "+".join([f"<{name}>" for name in modifiers] + [_bracket(key) for key in keys])
    pynput_keyboard = _pynput_keyboard()
    if pynput_keyboard is not None:
        try:
            pynput_keyboard.HotKey.parse(canonical)
        except ValueError as exc:
            raise ValueError(f"{hotkey!r} is not a valid hotkey here ({exc}); {_EXAMPLE}.") from exc
    return canonical


_ALIASES = {
    "control": "ctrl",
    "super": "cmd",
    "win": "cmd",
    "meta": "cmd",
    "command": "cmd",
    "altgr": "alt_gr",
    "option": "alt",
    "escape": "esc",
    "return": "enter",
    "del": "delete",
    "ins": "insert",
    "pgup": "page_up",
    "pgdown": "page_down",
    "print": "print_screen",
    "printscreen": "print_screen",
}
"""Names menus and other programs write (the notation :func:`display_hotkey` uses) → pynput's names."""
_SYMBOLS = {"⌃": "ctrl", "⌥": "alt", "⇧": "shift", "⌘": "cmd"}


def _expand_symbols(text: str) -> str:
    """macOS notation (``⌃⌥T``) → ``<ctrl>+<alt>+T``; other text unchanged."""
    if not any(symbol in text for symbol in _SYMBOLS):
        return text
    head = [f"<{_SYMBOLS[char]}>" for char in text if char in _SYMBOLS]
    rest = "".join(char for char in text if char not in _SYMBOLS).strip("+ ")
    reverse = {v: k for k, v in _MAC_NAMES.items() if k in KEY_NAMES}
    rest = f"<{reverse[rest]}>" if rest in reverse else rest
    return "+".join([*head, rest] if rest else head)


def display_hotkey(hotkey: str, platform: str | None = None) -> str:
    """Write a hotkey the way menus show shortcuts: ``Ctrl+Alt+T``, or ``⌃⌥T`` on macOS.

    Args:
        hotkey: In pynput's syntax, e.g. ``"<ctrl>+<alt>+t"``.
        platform: A ``sys.platform`` value; this machine's when None.

    Raises:
        ValueError: ``hotkey`` is not valid (see :func:`parse_hotkey`).
    """
    platform = platform or sys.platform
    names = [part.strip("<>") if len(part) > 1 else part for part in _split(parse_hotkey(hotkey))]
    if platform == "darwin":
        return "".join(_MAC_NAMES.get(name) or _key_label(name) for name in names)
    cmd = "Win" if platform.startswith("win") else "Super"
    return "+".join(_PLAIN_NAMES.get(name) or (cmd if name == "cmd" else _key_label(name)) for name in names)


def _split(text: str) -> list[str]:
    """Split at '+' as pynput does: a '+' that starts a part is the plus key itself."""
    parts, start = [], 0
    for i, char in enumerate(text):
        if char == "+" and i != start:
            parts.append(text[start:i])
            start = i + 1
    if start == len(text):
        raise ValueError(f"{text!r} is not a valid hotkey: it ends with '+'; {_EXAMPLE}.")
    parts.append(text[start:])
    return parts


def _bracket(name: str) -> str:
    return name if len(name) == 1 else f"<{name}>"


def _key_label(name: str) -> str:
    if len(name) == 1:
        return name.upper()
    if name.isdigit():
        return f"Key {name}"
    return " ".join(word.capitalize() for word in name.split("_"))


def _pynput_keyboard() -> Any | None:
    """``pynput.keyboard``, or None where it cannot be imported (no X server, Wayland without XWayland)."""
    try:
        from pynput import keyboard
    except ImportError as exc:  # pynput raises ImportError when no backend can start
        log.debug("pynput unavailable: %s", exc)
        return None
    return keyboard


def _x_display() -> tuple[bool, str]:
    """Whether the X display can be reached (for the key grab)."""
    display_name = os.environ.get("DISPLAY")
    if not display_name:
        return False, "No X display (DISPLAY is not set), so there is no keyboard to grab a hotkey on."
    try:
        from Xlib import display as xdisplay
        from Xlib.error import DisplayError
    except ImportError:
        return False, "python-xlib is missing; reinstall textdrop with its desktop extra."
    try:
        xdisplay.Display(display_name).close()
    except (DisplayError, OSError) as exc:
        return False, f"Cannot reach the X display {display_name!r} ({exc})."
    return True, ""


class HotkeyListener(QObject):
    """Emits :attr:`activated` on the GUI thread whenever the global hotkey is pressed.

    The grab calls back from a thread of its own (X11, Windows) or from the event loop (macOS); the callback
    only emits a Qt signal, which a queued connection carries to this object's thread (the GUI thread), where
    :attr:`activated` is emitted.
    Call :meth:`stop` before deleting the object or quitting.

    Signals:
        activated(): The hotkey was pressed.
    """

    activated = Signal()
    _fired = Signal()  # emitted by the grab (its thread, or the event loop); queued to _relay in ours

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._fired.connect(self._relay, Qt.ConnectionType.QueuedConnection)
        self._listener: Any | None = None
        self._hotkey: str | None = None
        self.error = ""
        """Why the last :meth:`start` failed, in words for the user ("" after a success)."""

    @property
    def hotkey(self) -> str | None:
        """The hotkey being listened to (canonical form), or None."""
        return self._hotkey if self._listener is not None else None

    @property
    def running(self) -> bool:
        """Whether the listener (or grab) thread is alive."""
        return self._listener is not None and self._listener.is_alive()

    @staticmethod
    def available() -> tuple[bool, str]:
        """Whether global hotkeys can work here, and if not, why and what to do instead.

        Returns:
            ``(True, "")``, or ``(False, message)`` with a message for the user.
        """
        if is_wayland():
            from textdrop.desktop.capture import globalshortcuts

            version, reason = globalshortcuts.portal_version()
            if not version:
                reason = f"Global hotkeys on Wayland need the desktop's GlobalShortcuts portal: {reason}"
                return False, f"{reason} {globalshortcuts.FALLBACK}"
            return True, ""
        if sys.platform == "darwin" or sys.platform.startswith("win"):
            return True, ""  # a registered hot key needs no permission (unlike watching the keyboard)
        return _x_display()

    def start(self, hotkey: str) -> bool:
        """Listen for ``hotkey`` (replacing any hotkey listened to before): an X key grab, a hot key
        registered with Windows or macOS, or a shortcut bound by the Wayland desktop's portal (this waits
        while the desktop asks the user); the focused application does not receive the key.

        Returns:
            True when listening; False otherwise, with the reason in :attr:`error` (an invalid hotkey,
            one another program holds, or one of :meth:`available`'s reasons).
        """
        from textdrop.desktop.capture.xgrab import GrabError, XKeyGrab

        self.stop()
        try:
            canonical = parse_hotkey(hotkey)
        except ValueError as exc:
            return self._failed(str(exc))
        ok, message = self.available()
        if not ok:
            return self._failed(message)
        names = [part.strip("<>") if len(part) > 1 else part for part in _split(canonical)]
        modifiers, key = [n for n in names if n in MODIFIERS], names[-1]
        if is_wayland():
            from textdrop.desktop.capture.globalshortcuts import PortalShortcut

            grab: Any = PortalShortcut(modifiers, key, self._on_hotkey)
        elif sys.platform == "win32":
            from textdrop.desktop.capture.winhotkey import WinHotKey

            grab = WinHotKey(modifiers, key, self._on_hotkey)
        elif sys.platform == "darwin":
            from textdrop.desktop.capture.machotkey import CarbonHotKey

            grab = CarbonHotKey(modifiers, key, self._on_hotkey)
        else:
            grab = XKeyGrab(modifiers, key, self._on_hotkey)
        try:
            grab.start()
        except GrabError as exc:
            return self._failed(str(exc))
        self._listener, self._hotkey, self.error = grab, canonical, ""
        log.info("grabbed the capture hotkey %s", canonical)
        return True

    def stop(self) -> None:
        """Stop listening (no-op when not listening); the listener thread has ended when this returns."""
        listener, self._listener = self._listener, None
        if listener is not None:
            listener.stop()
            log.debug("stopped listening for %s", self._hotkey)

    def _on_hotkey(self) -> None:
        # the grab's thread: only emit. The queued connection delivers it to _relay in this object's thread,
        # so activated is always emitted there, whatever its receivers are (even plain functions).
        self._fired.emit()

    @Slot()
    def _relay(self) -> None:
        if self._listener is not None:
            self.activated.emit()

    def _failed(self, message: str) -> bool:
        self.error = message
        log.warning("global hotkey unavailable: %s", message)
        return False
