"""The ``[desktop]`` table of config.toml: the tray app's own settings."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class DesktopOptions(BaseModel):
    """How the tray app behaves; edited in its settings dialog, applied without a restart."""

    model_config = ConfigDict(extra="forbid")

    hotkey: str = Field(
        "<ctrl>+<alt>+t",
        description="Global hotkey for Capture region, in pynput's syntax (⌃⌥T on macOS).",
    )
    copy_results: bool = Field(True, description="Put the text of a capture or a drop on the clipboard.")
    notify: bool = Field(True, description="Show a notification when a capture or a drop is read.")
    start_at_login: bool = Field(False, description="Start the tray app when the user logs in.")
