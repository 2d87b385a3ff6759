"""The ``[desktop]`` table of config.toml: the tray app's own settings."""

from __future__ import annotations

import sys
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

DEFAULT_HOTKEY = "<cmd>+<shift>+2" if sys.platform == "darwin" else "<ctrl>+<alt>+o"
"""Capture region's default hotkey: Ctrl+Alt+O ("OCR"; GNOME, KDE Plasma, Xfce, Cinnamon and Windows bind
nothing to it), ⌘⇧2 on macOS (next to the system's ⌘⇧3/4/5 screenshot keys, which it leaves alone). See
``docs/adr/012-tray-usability.md``."""


class DesktopOptions(BaseModel):
    """How the tray app behaves; edited in its settings dialog, applied without a restart."""

    model_config = ConfigDict(extra="forbid")

    hotkey: str = Field(
        DEFAULT_HOTKEY,
        description="Global hotkey for Capture region, in pynput's syntax or as menus write it (Ctrl+Alt+O).",
    )
    copy_results: bool = Field(True, description="Put the text of a capture or a drop on the clipboard.")
    copy_markdown: bool = Field(
        False,
        description="Put Markdown, not plain text, as the clipboard's text (Markdown and HTML are always "
        "offered alongside, for applications that ask for them).",
    )
    notify: bool = Field(True, description="Show a notification when a capture or a drop is read.")
    start_at_login: bool = Field(False, description="Start the tray app when the user logs in.")
    tray_icon: Literal["auto", "light", "dark"] = Field(
        "auto",
        description="The panel the tray icon sits on: 'light' (a dark glyph), 'dark' (a light glyph), or "
        "'auto' (after the desktop's colour scheme).",
    )
