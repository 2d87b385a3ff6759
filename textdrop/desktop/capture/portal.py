"""Wayland screenshots through the xdg-desktop-portal Screenshot interface, over the D-Bus session bus.

On Wayland an app cannot read the screen; it asks the portal (``org.freedesktop.portal.Screenshot``). The
call returns at once with a *request handle* (an object path); the result arrives later as the
``org.freedesktop.portal.Request.Response`` signal on that path: a response code (0 success, 1 cancelled
by the user, 2 other) and a map whose ``uri`` names a PNG of the whole desktop, which the portal saved in
the user's pictures folder. We load it and delete the file (the user asked for text, not a file).

A portal that lacks permission may never answer (GNOME asks once, in a dialog), hence the timeout.
:class:`PortalScreenshot` is asynchronous (the capture overlay uses it); :func:`grab_desktop` waits for it
in a local event loop.
"""

from __future__ import annotations

import logging
import secrets
from pathlib import Path

from PySide6.QtCore import SLOT, QEventLoop, QObject, QTimer, QUrl, Signal, Slot
from PySide6.QtDBus import QDBusConnection, QDBusMessage, QDBusObjectPath, QDBusPendingCallWatcher
from PySide6.QtGui import QImage

from textdrop.engine.errors import TextdropError

log = logging.getLogger(__name__)

SERVICE = "org.freedesktop.portal.Desktop"
PATH = "/org/freedesktop/portal/desktop"
SCREENSHOT_INTERFACE = "org.freedesktop.portal.Screenshot"
REQUEST_INTERFACE = "org.freedesktop.portal.Request"
REQUEST_PREFIX = "/org/freedesktop/portal/desktop/request"
TIMEOUT_S = 15.0
"""How long to wait for the portal's answer (seconds), permission dialog included."""

_INSTALL_HINT = (
    "Install xdg-desktop-portal and the backend for your desktop (xdg-desktop-portal-gnome, -kde or -wlr), "
    "or bind a screenshot tool to a shortcut and let textdrop watch its folder."
)
_MISSING = {
    "org.freedesktop.DBus.Error.ServiceUnknown",
    "org.freedesktop.DBus.Error.NameHasNoOwner",
    "org.freedesktop.DBus.Error.UnknownObject",
    "org.freedesktop.DBus.Error.UnknownInterface",
    "org.freedesktop.DBus.Error.UnknownMethod",
}
_RESPONSE_SLOT = SLOT("_on_response(uint,QVariantMap)")


class PortalError(TextdropError):
    """The screenshot portal is missing, refused, or did not answer; the message says what to do."""


def session_bus() -> QDBusConnection:
    """The D-Bus session bus (a function, so that tests can substitute a private bus)."""
    return QDBusConnection.sessionBus()


class PortalScreenshot(QObject):
    """One asynchronous screenshot request to the portal.

    Connect the signals, then call :meth:`request`; exactly one of them is emitted, always from the event
    loop (never from inside :meth:`request`).

    Signals:
        finished(QImage): The whole desktop, in device pixels.
        failed(object): A :class:`PortalError` saying what went wrong and what to do.

    Args:
        connection: The bus to use; the session bus when None (tests pass a private bus).
        timeout_s: Seconds to wait for the portal's answer.
        parent: The Qt parent.
    """

    finished = Signal(QImage)
    failed = Signal(object)

    def __init__(
        self,
        connection: QDBusConnection | None = None,
        *,
        timeout_s: float = TIMEOUT_S,
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self._bus = connection
        self._handles: list[str] = []
        self._watcher: QDBusPendingCallWatcher | None = None
        self._done = False
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(round(timeout_s * 1000))
        self._timer.timeout.connect(self._on_timeout)

    def request(self) -> None:
        """Ask the portal for a non-interactive screenshot of the whole desktop; returns at once."""
        bus = self._bus if self._bus is not None else session_bus()
        self._bus = bus
        if not bus.isConnected():
            detail = bus.lastError().message() or "no DBUS_SESSION_BUS_ADDRESS"
            self._fail_later(
                f"Cannot take a screenshot on Wayland: there is no D-Bus session bus ({detail}). "
                "Run textdrop inside your desktop session."
            )
            return
        token = f"textdrop_{secrets.token_hex(8)}"
        # The portal puts the request at .../request/SENDER/TOKEN (SENDER: our unique name without the
        # colon, dots as underscores). Listen there before calling, so a fast answer cannot be missed.
        sender = bus.baseService().lstrip(":").replace(".", "_")
        self._listen(f"{REQUEST_PREFIX}/{sender}/{token}")
        message = QDBusMessage.createMethodCall(SERVICE, PATH, SCREENSHOT_INTERFACE, "Screenshot")
        message.setArguments(["", {"handle_token": token, "interactive": False}])
        self._watcher = QDBusPendingCallWatcher(bus.asyncCall(message, self._timer.interval()), self)
        self._watcher.finished.connect(self._on_reply)
        self._timer.start()
        log.debug("asked the screenshot portal (token %s)", token)

    def _listen(self, handle: str) -> None:
        if handle not in self._handles and self._bus is not None:
            ok = self._bus.connect(SERVICE, handle, REQUEST_INTERFACE, "Response", self, _RESPONSE_SLOT)
            if ok:
                self._handles.append(handle)
            else:
                log.warning("could not listen for the portal's answer on %s", handle)

    def _on_reply(self, watcher: QDBusPendingCallWatcher) -> None:
        reply = watcher.reply()
        watcher.deleteLater()
        self._watcher = None
        if self._done:
            return
        if reply.type() == QDBusMessage.MessageType.ErrorMessage:
            name, text = reply.errorName(), reply.errorMessage()
            if name in _MISSING:
                self._fail(f"No screenshot portal answered on the session bus ({text}). {_INSTALL_HINT}")
            else:
                self._fail(f"The screenshot portal refused the request ({name}: {text}).")
            return
        arguments = reply.arguments()
        handle = arguments[0].path() if arguments and isinstance(arguments[0], QDBusObjectPath) else ""
        if not handle:
            self._fail(f"The screenshot portal answered without a request handle ({arguments!r}).")
            return
        self._listen(handle)  # older portals ignore handle_token and choose their own path

    @Slot("uint", "QVariantMap")
    def _on_response(self, code: int, results: dict[str, object]) -> None:
        if self._done:
            return
        if code == 1:
            self._fail("The screenshot was cancelled in the portal's dialog.")
            return
        if code != 0:
            self._fail(
                f"The screenshot portal refused (response {code}). Allow screenshots for textdrop in your "
                "desktop's privacy settings, then try again."
            )
            return
        uri = str(results.get("uri") or "")
        path = QUrl(uri).toLocalFile()
        image = QImage(path) if path else QImage()
        if image.isNull():
            self._fail(f"The screenshot portal's image {uri!r} could not be read.")
            return
        try:
            Path(path).unlink()
        except OSError as exc:
            log.warning("could not delete the portal's screenshot %s: %s", path, exc)
        self._finish()
        log.debug("portal screenshot: %dx%d px", image.width(), image.height())
        self.finished.emit(image)

    def _on_timeout(self) -> None:
        if not self._done:
            self._fail(
                f"The screenshot portal did not answer within {self._timer.interval() / 1000:g} s. If your "
                f"desktop asked for permission, allow it and try again. {_INSTALL_HINT}"
            )

    def _fail_later(self, message: str) -> None:
        QTimer.singleShot(0, self, lambda: self._fail(message))

    def _fail(self, message: str) -> None:
        if self._done:
            return
        self._finish()
        log.warning("%s", message)
        self.failed.emit(PortalError(message))

    def _finish(self) -> None:
        self._done = True
        self._timer.stop()
        if self._bus is not None:
            for handle in self._handles:
                self._bus.disconnect(SERVICE, handle, REQUEST_INTERFACE, "Response", self, _RESPONSE_SLOT)
        self._handles.clear()


def grab_desktop(connection: QDBusConnection | None = None, *, timeout_s: float = TIMEOUT_S) -> QImage:
    """Take a screenshot of the whole desktop through the portal and wait for it (local event loop).

    Returns:
        The whole desktop, in device pixels.

    Raises:
        PortalError: No session bus, no portal, refused, cancelled, or no answer within ``timeout_s``.
    """
    request = PortalScreenshot(connection, timeout_s=timeout_s)
    loop = QEventLoop()
    outcome: list[QImage | PortalError] = []

    def done(result: QImage | PortalError) -> None:
        outcome.append(result)
        loop.quit()

    request.finished.connect(done)
    request.failed.connect(done)
    request.request()
    if not outcome:
        loop.exec()
    result = outcome[0]
    if isinstance(result, PortalError):
        raise result
    return result
