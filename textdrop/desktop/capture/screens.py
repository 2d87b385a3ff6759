"""Freeze every screen at once, each at its native resolution, for the capture overlay.

Units: a screen's ``geometry`` is in *logical* pixels on the virtual desktop (what Qt's window and mouse
coordinates use); a grabbed ``image`` is in *device* pixels (what the monitor shows). They differ by the
screen's device pixel ratio (DPR): 2 on a Retina or 200 % screen, 1.25 or 1.5 with fractional scaling,
and each monitor of a mixed-DPI desktop has its own. :func:`textdrop.desktop.capture.overlay.region_to_device`
converts between the two per screen.

On X11, Windows and macOS each screen is grabbed with ``QScreen.grabWindow(0)``. On Wayland an app cannot
read the screen; the xdg-desktop-portal Screenshot interface (:mod:`.portal`) returns one image of the whole
desktop, which :func:`split_desktop` cuts into one image per screen.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from PySide6.QtCore import QRect
from PySide6.QtGui import QGuiApplication, QImage

from textdrop.engine.errors import TextdropError

if TYPE_CHECKING:
    from PySide6.QtGui import QScreen

log = logging.getLogger(__name__)


class CaptureError(TextdropError):
    """The screen could not be read; the message says what to allow or install."""


@dataclass(frozen=True, eq=False)
class Shot:
    """One screen, frozen.

    Attributes:
        screen: The screen it shows.
        geometry: The screen's rectangle on the virtual desktop, in logical pixels.
        image: What the screen showed, in device pixels (normally ``geometry.size() × device_pixel_ratio``,
            but see :attr:`scale`).
        device_pixel_ratio: Device pixels per logical pixel that Qt reports for the screen.
    """

    screen: QScreen
    geometry: QRect
    image: QImage
    device_pixel_ratio: float

    @property
    def scale(self) -> tuple[float, float]:
        """Image pixels per logical pixel, horizontally and vertically.

        Measured from the image rather than taken from the DPR, because the two disagree on some systems
        (a grab at 1:1 on a scaled screen, a portal image of a fractionally scaled desktop); the crop must
        follow the pixels actually grabbed. Falls back to the DPR for an empty geometry.
        """
        if self.geometry.width() <= 0 or self.geometry.height() <= 0:
            return self.device_pixel_ratio, self.device_pixel_ratio
        return (
            self.image.width() / self.geometry.width(),
            self.image.height() / self.geometry.height(),
        )


def is_wayland() -> bool:
    """Whether the session is Wayland, where apps can neither read the screen nor grab keys.

    True when Qt runs on its Wayland platform plugin, or (before a Qt application exists) when
    ``WAYLAND_DISPLAY`` is set and ``DISPLAY`` is not.
    """
    platform = QGuiApplication.platformName()
    if platform:
        return platform.startswith("wayland")
    return bool(os.environ.get("WAYLAND_DISPLAY")) and not os.environ.get("DISPLAY")


def grab_screens() -> list[Shot]:
    """Freeze every screen, each at its native resolution; the overlay shows these images.

    All screens are grabbed before anything is shown, so no overlay appears in another screen's image.
    On Wayland this asks the screenshot portal and waits for it in a local event loop (see
    :func:`.portal.grab_desktop`); :class:`.overlay.CaptureSession` uses the portal asynchronously instead.

    Returns:
        One :class:`Shot` per screen, in ``QGuiApplication.screens()`` order.

    Raises:
        CaptureError: A screen could not be grabbed (macOS without Screen Recording permission may instead
            return an image of the bare desktop, which cannot be detected).
        PortalError: On Wayland, the portal is missing, refused, or did not answer.
    """
    screens = QGuiApplication.screens()
    if not screens:
        raise CaptureError("Qt reports no screens, so there is nothing to capture.")
    if is_wayland():
        from textdrop.desktop.capture import portal

        return split_desktop(portal.grab_desktop(), screens)
    return [_grab(screen) for screen in screens]


def _grab(screen: QScreen) -> Shot:
    image = screen.grabWindow(0).toImage()
    if image.isNull():
        raise CaptureError(
            f"Could not read screen {screen.name()!r}. On macOS, allow textdrop in System Settings → "
            "Privacy & Security → Screen Recording, then restart it."
        )
    shot = Shot(screen, screen.geometry(), image, screen.devicePixelRatio())
    log.debug(
        "grabbed screen %r: geometry %s (logical px), image %dx%d (device px), DPR %s, scale %.3f x %.3f",
        screen.name(),
        shot.geometry.getRect(),
        image.width(),
        image.height(),
        shot.device_pixel_ratio,
        *shot.scale,
    )
    return shot


def split_desktop(image: QImage, screens: Sequence[QScreen]) -> list[Shot]:
    """Cut one image of the whole desktop (the portal's) into one :class:`Shot` per screen.

    The image is taken to cover the virtual desktop (``screen.virtualGeometry()``, logical pixels) at one
    scale, image width / desktop width (height likewise), as the portal returns a single image; on a
    mixed-DPI desktop a screen's piece may therefore hold more or fewer pixels than its monitor has. The
    overlay and the crop follow each piece's own size (:attr:`Shot.scale`), so they stay consistent.

    Args:
        image: The whole desktop, in device pixels.
        screens: The screens (``QScreen`` or anything with ``geometry()``, ``virtualGeometry()`` and
            ``devicePixelRatio()``).
    """
    shots = []
    for screen in screens:
        desktop = screen.virtualGeometry()
        ratio_x = image.width() / max(1, desktop.width())
        ratio_y = image.height() / max(1, desktop.height())
        geometry = screen.geometry()
        left = round((geometry.x() - desktop.x()) * ratio_x)
        top = round((geometry.y() - desktop.y()) * ratio_y)
        right = round((geometry.x() + geometry.width() - desktop.x()) * ratio_x)
        bottom = round((geometry.y() + geometry.height() - desktop.y()) * ratio_y)
        piece = image.copy(QRect(left, top, right - left, bottom - top))
        shots.append(Shot(screen, QRect(geometry), piece, screen.devicePixelRatio()))
    return shots
