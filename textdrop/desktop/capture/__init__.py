"""Screen capture: freeze the screens, let the user drag a region, hand back its pixels.

- :mod:`.screens`: :func:`grab_screens` freezes every screen at its native resolution (:class:`Shot`).
- :mod:`.overlay`: :class:`CaptureSession` shows the frozen screens and emits the dragged region
  (``captured(QImage)``, device pixels) or ``cancelled()``; :func:`region_to_device` does the HiDPI maths.
- :mod:`.hotkey`: :class:`HotkeyListener`, the global hotkey (an X key grab, :mod:`.xgrab`, on X11; a
  registered hot key on Windows, :mod:`.winhotkey`, and macOS, :mod:`.machotkey`), and the hotkey syntax
  helpers.
- :mod:`.portal`: Wayland screenshots through xdg-desktop-portal.
"""

from __future__ import annotations

from textdrop.desktop.capture.hotkey import HotkeyListener, display_hotkey, parse_hotkey
from textdrop.desktop.capture.overlay import MIN_DRAG, CaptureSession, Overlay, region_to_device
from textdrop.desktop.capture.portal import PortalError, PortalScreenshot
from textdrop.desktop.capture.screens import (
    CaptureError,
    Shot,
    grab_screens,
    is_wayland,
    split_desktop,
)

__all__ = [
    "MIN_DRAG",
    "CaptureError",
    "CaptureSession",
    "HotkeyListener",
    "Overlay",
    "PortalError",
    "PortalScreenshot",
    "Shot",
    "display_hotkey",
    "grab_screens",
    "is_wayland",
    "parse_hotkey",
    "region_to_device",
    "split_desktop",
]
