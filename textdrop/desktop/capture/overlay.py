"""The capture overlay: the frozen screens, dimmed, one window per screen; the user drags a region.

:class:`CaptureSession` freezes every screen (:func:`.screens.grab_screens`, or the portal on Wayland), shows
one frameless, always-on-top, full-screen :class:`Overlay` per screen with that screen's frozen image,
and lets the user drag a rectangle on any of them. The region is cut from the *frozen* image of the
screen the drag was on, in device pixels, and emitted as :attr:`CaptureSession.captured`; Esc, a right
click, or a drag smaller than :data:`MIN_DRAG` logical pixels emits :attr:`CaptureSession.cancelled`.
Everything is driven by the Qt event loop; nothing here waits.

Coordinates: the overlay works in its own widget coordinates (logical pixels, relative to its screen);
:func:`region_to_device` turns such a rectangle into device pixels of that screen's frozen image, per
screen, so a drag on a 200 % monitor next to a 100 % one cuts the right pixels from each.
"""

from __future__ import annotations

import logging
import math
import sys
from collections.abc import Callable

from PySide6.QtCore import QObject, QPointF, QRect, QRectF, Qt, QTimer, Signal, Slot
from PySide6.QtGui import (
    QColor,
    QCursor,
    QFont,
    QGuiApplication,
    QImage,
    QKeyEvent,
    QMouseEvent,
    QPainter,
    QPaintEvent,
    QPen,
    QPixmap,
)
from PySide6.QtWidgets import QWidget

from textdrop.desktop.capture import screens
from textdrop.desktop.capture.screens import Shot
from textdrop.engine.errors import TextdropError

log = logging.getLogger(__name__)

MIN_DRAG = 4
"""A drag narrower or lower than this (logical pixels) is a click, which cancels."""
DIM = QColor(0, 0, 0, 110)
"""Laid over the frozen image outside the selection."""
ACCENT = QColor(61, 174, 233)
"""The rubber band's border."""
HINT = "Drag over the text to read it  ·  Esc or right click cancels"
"""What the overlay says at the top of each screen until the drag starts."""


def region_to_device(shot: Shot, rect: QRect | QRectF) -> QRect:
    """Convert a region of a screen from logical to device pixels of that screen's frozen image.

    Each screen has its own scale (:attr:`.Shot.scale`: the grabbed image's size over the screen's logical
    size, which is the screen's DPR unless the grab came back at another size). The result covers every
    device pixel the logical rectangle touches (edges rounded outwards) and is clipped to the image.

    Args:
        shot: The frozen screen.
        rect: The region in logical pixels relative to the screen's top-left corner (overlay coordinates).

    Returns:
        The region in device pixels of ``shot.image``; empty when ``rect`` lies outside the screen.
    """
    area = QRectF(rect).normalized()
    scale_x, scale_y = shot.scale
    left = math.floor(area.left() * scale_x + 1e-6)
    top = math.floor(area.top() * scale_y + 1e-6)
    right = math.ceil(area.right() * scale_x - 1e-6)  # QRectF.right() is x + width: exclusive
    bottom = math.ceil(area.bottom() * scale_y - 1e-6)
    device = QRect(left, top, max(0, right - left), max(0, bottom - top))
    return device.intersected(shot.image.rect())


class Overlay(QWidget):
    """One screen's overlay window: the frozen image, dimmed, with the rubber band of the current drag.

    Created and shown by :class:`CaptureSession`; reports to it. Mouse events after a press keep coming to
    the overlay where the press started (Qt's implicit grab), even when the pointer crosses to another
    screen, so a drag belongs to one screen; positions outside are clamped to its edge.
    """

    def __init__(self, shot: Shot, session: CaptureSession) -> None:
        super().__init__(
            None,
            Qt.WindowType.FramelessWindowHint | Qt.WindowType.WindowStaysOnTopHint | Qt.WindowType.Window,
        )
        self.shot = shot
        self._session = session
        self._pixmap = QPixmap.fromImage(shot.image)
        self._origin: QPointF | None = None
        self._current = QPointF()
        self.setWindowTitle("textdrop capture")
        self.setCursor(Qt.CursorShape.CrossCursor)
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.setAttribute(Qt.WidgetAttribute.WA_OpaquePaintEvent)

    def place(self) -> None:
        """Put the window on its screen, covering it, and show it."""
        self.setScreen(self.shot.screen)
        self.setGeometry(self.shot.screen.geometry())
        if sys.platform == "darwin":
            self.show()  # full screen on macOS means a new Space, with an animation
        else:
            self.showFullScreen()

    def selection(self) -> QRectF | None:
        """The rubber band in widget coordinates (logical pixels), or None when not dragging."""
        if self._origin is None:
            return None
        return QRectF(self._origin, self._current).normalized()

    def selection_on_screen(self) -> QRectF | None:
        """The rubber band in logical pixels relative to the screen (:func:`region_to_device`'s input).

        The same as :meth:`selection` when the window covers its screen exactly; otherwise scaled, since
        the frozen image is drawn stretched over the whole window.
        """
        area = self.selection()
        if area is None or self.width() <= 0 or self.height() <= 0:
            return area
        sx = self.shot.geometry.width() / self.width()
        sy = self.shot.geometry.height() / self.height()
        return QRectF(area.x() * sx, area.y() * sy, area.width() * sx, area.height() * sy)

    def _clamped(self, event: QMouseEvent) -> QPointF:
        point = event.position()
        return QPointF(min(max(point.x(), 0.0), self.width()), min(max(point.y(), 0.0), self.height()))

    def mousePressEvent(self, event: QMouseEvent) -> None:
        if event.button() == Qt.MouseButton.RightButton:
            self._session.cancel()
        elif event.button() == Qt.MouseButton.LeftButton:
            self._origin = self._current = self._clamped(event)
            self.update()
        event.accept()

    def mouseMoveEvent(self, event: QMouseEvent) -> None:
        if self._origin is not None:
            self._current = self._clamped(event)
            self.update()
        event.accept()

    def mouseReleaseEvent(self, event: QMouseEvent) -> None:
        if event.button() == Qt.MouseButton.LeftButton and self._origin is not None:
            self._current = self._clamped(event)
            area = self.selection_on_screen()
            self._origin = None
            self.update()
            self._session._finish(self, area)
        event.accept()

    def keyPressEvent(self, event: QKeyEvent) -> None:
        if event.key() == Qt.Key.Key_Escape:
            self._session.cancel()
            event.accept()
        else:
            super().keyPressEvent(event)

    def paintEvent(self, event: QPaintEvent) -> None:
        painter = QPainter(self)
        whole = QRectF(self.rect())
        source = QRectF(self._pixmap.rect())  # device pixels of the frozen image
        painter.drawPixmap(whole, self._pixmap, source)
        painter.fillRect(whole, DIM)
        area = self.selection()
        if area is not None and area.width() > 0 and area.height() > 0:
            scale_x = source.width() / max(1.0, whole.width())
            scale_y = source.height() / max(1.0, whole.height())
            lit = QRectF(
                area.x() * scale_x, area.y() * scale_y, area.width() * scale_x, area.height() * scale_y
            )
            painter.drawPixmap(area, self._pixmap, lit)  # the selection undimmed
            pen = QPen(ACCENT, 2)
            pen.setCosmetic(True)
            painter.setPen(pen)
            painter.drawRect(area.adjusted(-1, -1, 1, 1))
            self._draw_size(painter, area)
        else:
            self._draw_hint(painter)
        painter.end()

    def hint(self) -> str:
        """The hint shown at the top of the screen: :data:`HINT`, and the hotkey when the session has one."""
        hotkey = self._session.hotkey
        return f"{HINT}  ·  Capture hotkey: {hotkey}" if hotkey else HINT

    def _draw_hint(self, painter: QPainter) -> None:
        text = self.hint()
        font = QFont(painter.font())
        font.setPointSizeF(max(11.0, font.pointSizeF() * 1.2))
        painter.setFont(font)
        metrics = painter.fontMetrics()
        box = QRectF(0, 0, metrics.horizontalAdvance(text) + 32, metrics.height() + 16)
        box.moveCenter(QPointF(self.width() / 2, 24 + box.height() / 2))
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        painter.setPen(Qt.PenStyle.NoPen)
        painter.setBrush(QColor(0, 0, 0, 190))
        painter.drawRoundedRect(box, 8, 8)
        painter.setPen(QColor(255, 255, 255))
        painter.drawText(box, Qt.AlignmentFlag.AlignCenter, text)

    def _draw_size(self, painter: QPainter, area: QRectF) -> None:
        on_screen = self.selection_on_screen()
        device = region_to_device(self.shot, on_screen) if on_screen is not None else QRect()
        text = f"{device.width()} × {device.height()}"
        font = QFont(painter.font())
        font.setPointSizeF(max(9.0, font.pointSizeF()))
        painter.setFont(font)
        metrics = painter.fontMetrics()
        box = QRectF(0, 0, metrics.horizontalAdvance(text) + 10, metrics.height() + 4)
        box.moveBottomLeft(QPointF(area.left() - 1, area.top() - 4))
        if box.top() < 0:  # no room above: put it inside, at the top
            box.moveTopLeft(QPointF(area.left() + 3, area.top() + 3))
        painter.fillRect(box, QColor(0, 0, 0, 170))
        painter.setPen(QColor(255, 255, 255))
        painter.drawText(box, Qt.AlignmentFlag.AlignCenter, text)


class CaptureSession(QObject):
    """One screen capture: freeze the screens, let the user drag a region, report the pixels.

    Reusable: after a capture ends (either signal), :meth:`start` begins the next one. While one runs,
    :meth:`start` does nothing, so a repeated hotkey cannot stack overlays.

    Signals:
        captured(QImage): The region, in device pixels, cut from the frozen image of the screen the drag
            was on (the image keeps that screen's ``devicePixelRatio``).
        cancelled(): Esc, a right click, or a drag smaller than :data:`MIN_DRAG`.
        failed(str): The screens could not be read (portal missing or refused, no permission); the message
            says what to do. No overlay was shown.

    Args:
        parent: The Qt parent.
        grab: Returns the frozen screens; :func:`.screens.grab_screens` (or the portal on Wayland) when None.
        hotkey: The capture hotkey as menus write it, named in the overlay's hint ("" for none).
    """

    captured = Signal(QImage)
    cancelled = Signal()
    failed = Signal(str)

    def __init__(
        self,
        parent: QObject | None = None,
        *,
        grab: Callable[[], list[Shot]] | None = None,
        hotkey: str = "",
    ) -> None:
        super().__init__(parent)
        self._grab = grab
        self.hotkey = hotkey
        """The capture hotkey as menus write it (``Ctrl+Alt+O``), for the overlay's hint; "" for none."""
        self._overlays: list[Overlay] = []
        self._pending: QObject | None = None  # the portal request being waited for
        self._portal: QObject | None = None  # the last portal request (see _start_portal)

    @property
    def active(self) -> bool:
        """Whether a capture is under way (waiting for the portal, or overlays shown)."""
        return bool(self._overlays) or self._pending is not None

    @property
    def overlays(self) -> tuple[Overlay, ...]:
        """The overlay windows of the capture under way, one per screen (empty when none)."""
        return tuple(self._overlays)

    def start(self) -> bool:
        """Freeze the screens and show the overlays; False (and nothing happens) when one is under way.

        On X11, Windows and macOS the screens are grabbed at once, here. On Wayland the portal is asked and
        the overlays appear when it answers; if it fails, :attr:`failed` is emitted.
        """
        if self.active:
            log.debug("capture already under way")
            return False
        if self._grab is None and screens.is_wayland():
            self._start_portal()
            return True
        try:
            shots = self._grab() if self._grab is not None else screens.grab_screens()
        except TextdropError as exc:
            message = str(exc)
            QTimer.singleShot(0, self, lambda: self.failed.emit(message))
            return True
        self._show(shots)
        return True

    def cancel(self) -> None:
        """End the capture under way without a region; emits :attr:`cancelled` (nothing when none runs)."""
        if not self.active:
            return
        self._pending = None
        self._close()
        log.debug("capture cancelled")
        self.cancelled.emit()

    def _start_portal(self) -> None:
        from textdrop.desktop.capture import portal

        # Kept (not parented, never deleteLater'd) until the next capture replaces it: dropping or
        # deleting it from inside its own signal's emission would delete a QObject mid-emit.
        request = portal.PortalScreenshot()
        request.finished.connect(self._portal_finished)
        request.failed.connect(self._portal_failed)
        self._portal = request
        self._pending = request
        request.request()

    @Slot(QImage)
    def _portal_finished(self, image: QImage) -> None:
        if self._pending is not None and self.sender() is self._pending:
            self._pending = None
            self._show(screens.split_desktop(image, QGuiApplication.screens()))

    @Slot(object)
    def _portal_failed(self, error: object) -> None:
        if self._pending is not None and self.sender() is self._pending:
            self._pending = None
            self.failed.emit(str(error))

    def _show(self, shots: list[Shot]) -> None:
        if not shots:
            self.failed.emit("There is no screen to capture.")
            return
        self._overlays = [Overlay(shot, self) for shot in shots]
        for overlay in self._overlays:
            overlay.place()
        under_pointer = QGuiApplication.screenAt(QCursor.pos())
        focus = next((o for o in self._overlays if o.shot.screen == under_pointer), self._overlays[0])
        focus.raise_()
        focus.activateWindow()
        focus.setFocus()
        if QGuiApplication.platformName() == "xcb":
            focus.grabKeyboard()  # Esc must reach us even when the window manager withholds focus
        log.debug("capture overlays shown on %d screen(s)", len(self._overlays))

    def _finish(self, overlay: Overlay, area: QRectF | None) -> None:
        if overlay not in self._overlays:
            return
        if area is None or area.width() < MIN_DRAG or area.height() < MIN_DRAG:
            self.cancel()
            return
        device = region_to_device(overlay.shot, area)
        if device.isEmpty():
            self.cancel()
            return
        image = overlay.shot.image.copy(device)
        self._close()
        log.debug(
            "captured %dx%d device px at %s on screen %r",
            image.width(),
            image.height(),
            device.getRect(),
            overlay.shot.screen.name(),
        )
        self.captured.emit(image)

    def _close(self) -> None:
        overlays, self._overlays = self._overlays, []
        for overlay in overlays:
            overlay.releaseKeyboard()
            overlay.close()
            overlay.deleteLater()
