"""A key recorder for the capture hotkey: click it, press the keys, and it shows them as menus do.

The field shows the platform's notation (``Ctrl+Alt+O``, ``⌃⌥O`` on macOS; the notation of the tray
menu, :func:`~textdrop.desktop.capture.hotkey.display_hotkey`), and :meth:`HotkeyEdit.hotkey` gives the
hotkey in pynput's syntax for config.toml. Typed text in either notation is accepted too (the field is a
line edit; :func:`~textdrop.desktop.capture.hotkey.parse_hotkey` reads both): Backspace or Delete alone
clears it, Tab moves on, and a key pressed with Ctrl, Alt or Super is recorded.
"""

from __future__ import annotations

import logging
import sys

from PySide6.QtCore import Qt
from PySide6.QtGui import QKeyEvent
from PySide6.QtWidgets import QLineEdit, QWidget

from textdrop.desktop.capture.hotkey import display_hotkey, parse_hotkey

log = logging.getLogger(__name__)

_QT_KEYS = {
    Qt.Key.Key_Escape: "esc",
    Qt.Key.Key_Space: "space",
    Qt.Key.Key_Return: "enter",
    Qt.Key.Key_Enter: "enter",
    Qt.Key.Key_Insert: "insert",
    Qt.Key.Key_Delete: "delete",
    Qt.Key.Key_Backspace: "backspace",
    Qt.Key.Key_Home: "home",
    Qt.Key.Key_End: "end",
    Qt.Key.Key_PageUp: "page_up",
    Qt.Key.Key_PageDown: "page_down",
    Qt.Key.Key_Up: "up",
    Qt.Key.Key_Down: "down",
    Qt.Key.Key_Left: "left",
    Qt.Key.Key_Right: "right",
    Qt.Key.Key_Print: "print_screen",
    Qt.Key.Key_Pause: "pause",
    Qt.Key.Key_Menu: "menu",
    Qt.Key.Key_Tab: "tab",
}
_MODIFIER_KEYS = {
    Qt.Key.Key_Control,
    Qt.Key.Key_Alt,
    Qt.Key.Key_AltGr,
    Qt.Key.Key_Shift,
    Qt.Key.Key_Meta,
    Qt.Key.Key_Super_L,
    Qt.Key.Key_Super_R,
}


def key_name(key: int) -> str | None:
    """pynput's name for Qt key ``key`` (``Qt.Key_O`` → ``"o"``, ``Qt.Key_F9`` → ``"f9"``), or None."""
    if Qt.Key.Key_A <= key <= Qt.Key.Key_Z or Qt.Key.Key_0 <= key <= Qt.Key.Key_9:
        return chr(key).lower()
    if Qt.Key.Key_F1 <= key <= Qt.Key.Key_F20:
        return f"f{key - Qt.Key.Key_F1 + 1}"
    return _QT_KEYS.get(Qt.Key(key))


def event_hotkey(event: QKeyEvent, platform: str | None = None) -> str | None:
    """The hotkey a key press makes, in pynput's syntax, or None for a lone modifier or an unknown key.

    On macOS Qt reports Command as Ctrl and Control as Meta; elsewhere Meta is the Super (Windows) key.
    """
    name = key_name(event.key())
    if name is None:
        return None
    mods = event.modifiers()
    mac = (platform or sys.platform) == "darwin"
    names = []
    if mods & (Qt.KeyboardModifier.MetaModifier if mac else Qt.KeyboardModifier.ControlModifier):
        names.append("ctrl")
    if mods & Qt.KeyboardModifier.AltModifier:
        names.append("alt")
    if mods & Qt.KeyboardModifier.ShiftModifier:
        names.append("shift")
    if mods & (Qt.KeyboardModifier.ControlModifier if mac else Qt.KeyboardModifier.MetaModifier):
        names.append("cmd")
    return "+".join([f"<{n}>" for n in names] + [name if len(name) == 1 else f"<{name}>"])


class HotkeyEdit(QLineEdit):
    """A line edit that records the hotkey pressed in it and shows it in the platform's notation."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setPlaceholderText("Click here and press the keys, e.g. " + display_hotkey("<ctrl>+<alt>+o"))
        self.setClearButtonEnabled(True)

    def set_hotkey(self, hotkey: str) -> None:
        """Show ``hotkey`` (any notation :func:`parse_hotkey` reads) as menus write it; as given when it is
        not valid (saving then says why)."""
        try:
            self.setText(display_hotkey(hotkey))
        except ValueError:
            self.setText(hotkey)

    def hotkey(self) -> str:
        """The text in pynput's syntax (canonical).

        Raises:
            ValueError: the text is not a valid hotkey (the message says why).
        """
        return parse_hotkey(self.text())

    def keyPressEvent(self, event: QKeyEvent) -> None:
        key = event.key()
        plain = not event.modifiers() & ~Qt.KeyboardModifier.KeypadModifier
        if key in _MODIFIER_KEYS or (plain and key in (Qt.Key.Key_Tab, Qt.Key.Key_Backtab)):
            super().keyPressEvent(event)
            return
        if plain and key in (Qt.Key.Key_Backspace, Qt.Key.Key_Delete):
            self.clear()
            return
        pressed = event_hotkey(event)
        shortcut_like = event.modifiers() & ~(
            Qt.KeyboardModifier.ShiftModifier | Qt.KeyboardModifier.KeypadModifier
        ) or (pressed is not None and pressed.startswith("<f"))
        if pressed is None or not shortcut_like:
            super().keyPressEvent(event)  # typing a hotkey as text
            return
        try:
            self.setText(display_hotkey(pressed))
        except ValueError as exc:
            log.debug("not a hotkey: %s (%s)", pressed, exc)
            self.setText(pressed)
        event.accept()
