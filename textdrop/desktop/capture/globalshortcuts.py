"""A global hotkey on Wayland through the xdg-desktop-portal GlobalShortcuts interface, over D-Bus.

Wayland apps cannot grab keys; desktops that offer ``org.freedesktop.portal.GlobalShortcuts`` (KDE Plasma
5.27+, GNOME 48+, Hyprland) bind a shortcut for the app and tell it when it is pressed. The protocol
(https://flatpak.github.io/xdg-desktop-portal/docs/doc-org.freedesktop.portal.GlobalShortcuts.html):

1. ``CreateSession(a{sv} options)`` returns a request handle; its ``org.freedesktop.portal.Request``
   ``Response(u code, a{sv} results)`` signal brings ``session_handle`` (code 0 success, 1 cancelled, 2
   other).
2. ``BindShortcuts(o session, a(sa{sv}) shortcuts, s parent_window, a{sv} options)``: each shortcut is an
   id with ``description`` and ``preferred_trigger`` (the XDG shortcuts notation, ``CTRL+ALT+o``); the
   desktop may ask the user, and its Response lists the shortcuts it bound (``trigger_description``: what
   the user chose). A shortcut missing from that list was refused.
3. ``Activated(o session, s id, t timestamp, a{sv})`` is emitted on the portal object when the shortcut is
   pressed (``Deactivated`` on release); closing the session (``org.freedesktop.portal.Session.Close``)
   unbinds it.

PySide6's QDBusArgument cannot build ``a(sa{sv})`` (see ``docs/adr/012-tray-usability.md``), so this
module speaks D-Bus through jeepney (pure Python, MIT), on a connection of its own, read by a thread of
its own; jeepney is imported only here.
"""

from __future__ import annotations

import logging
import secrets
import threading
import time
from collections.abc import Callable
from typing import Any

from textdrop.desktop.capture.xgrab import GrabError, keysym_name

log = logging.getLogger(__name__)

SERVICE = "org.freedesktop.portal.Desktop"
PATH = "/org/freedesktop/portal/desktop"
INTERFACE = "org.freedesktop.portal.GlobalShortcuts"
REQUEST_INTERFACE = "org.freedesktop.portal.Request"
SESSION_INTERFACE = "org.freedesktop.portal.Session"
SHORTCUT_ID = "capture"
DESCRIPTION = "Capture a screen region and copy its text (textdrop)"
TIMEOUT_S = 60.0
"""How long to wait for each portal answer (seconds); binding may show the desktop's dialog to the user."""

FALLBACK = (
    "Bind a keyboard shortcut to the command `textdrop capture` in your desktop's settings instead (GNOME: "
    "Settings → Keyboard → Custom Shortcuts; KDE: System Settings → Shortcuts → Add New → Command)."
)
"""What to do where the portal cannot bind the hotkey: ``textdrop capture`` waits for the tray's capture."""

_MODIFIERS = {"ctrl": "CTRL", "alt": "ALT", "shift": "SHIFT", "cmd": "LOGO"}
"""pynput modifier names → the XDG shortcuts spec's modifiers (it has no AltGr)."""
_PUNCTUATION = {
    "-": "minus",
    "=": "equal",
    ",": "comma",
    ".": "period",
    "/": "slash",
    ";": "semicolon",
    "'": "apostrophe",
    "`": "grave",
    "[": "bracketleft",
    "]": "bracketright",
    "\\": "backslash",
}
"""Single-character keys whose xkb keysym name is a word (``xkbcommon-keysyms.h``)."""
_NO_SERVICE = {"org.freedesktop.DBus.Error.ServiceUnknown", "org.freedesktop.DBus.Error.NameHasNoOwner"}
"""Bus errors meaning nothing owns the portal's name."""
_NO_BUS = "there is no D-Bus session bus to reach the desktop's portal"


def preferred_trigger(modifiers: list[str], key: str) -> str:
    """Write a hotkey in the XDG shortcuts notation the portal's ``preferred_trigger`` takes.

    Args:
        modifiers: pynput modifier names (``ctrl``, ``alt``, ``shift``, ``cmd``), as
            :func:`~textdrop.desktop.capture.hotkey.parse_hotkey` orders them.
        key: One pynput key name (``o``, ``f9``, ``print_screen``).

    Returns:
        E.g. ``"CTRL+ALT+o"``, ``"LOGO+F9"``, ``"SHIFT+Print"``: modifiers in upper case, the key as its
        xkb keysym name.

    Raises:
        GrabError: ``alt_gr`` is a modifier (the notation has none for it).
    """
    if "alt_gr" in modifiers:
        raise GrabError("The desktop's shortcut notation has no AltGr; choose a hotkey with Ctrl or Alt.")
    name = _PUNCTUATION.get(key) or keysym_name(key)
    return "+".join([*(_MODIFIERS[m] for m in modifiers), name])


def portal_version(bus: str = "SESSION") -> tuple[int, str]:
    """The version of the portal's GlobalShortcuts interface, or 0 and why it cannot be used.

    Args:
        bus: ``"SESSION"`` or a D-Bus address (tests pass a private bus).

    Returns:
        ``(version, "")``, or ``(0, reason)`` with a reason for the user (no session bus, no portal, or a
        portal without the interface).
    """
    from jeepney import DBusAddress, DBusErrorResponse, Properties
    from jeepney.io.blocking import open_dbus_connection

    try:
        with open_dbus_connection(bus) as conn:
            message = Properties(DBusAddress(PATH, SERVICE, INTERFACE)).get("version")
            reply = conn.send_and_get_reply(message, timeout=5.0)
            version = _unwrap(reply)[0][1]
    except DBusErrorResponse as exc:
        if exc.name in _NO_SERVICE:
            return 0, f"the session bus has no xdg-desktop-portal ({exc.name}) to offer global shortcuts."
        return 0, f"the desktop's portal offers no global shortcuts ({exc.name})."
    except (KeyError, OSError, TimeoutError, ValueError) as exc:
        return 0, f"{_NO_BUS} ({exc or type(exc).__name__})."
    return int(version), ""


def _detail(exc: Exception) -> str:
    """A D-Bus error as ``name: message`` (xdg-desktop-portal 1.21+ answers CreateSession from a host app
    that registered no app id with ``org.freedesktop.portal.Error.NotAllowed: An app id is required``)."""
    from jeepney import DBusErrorResponse

    if isinstance(exc, DBusErrorResponse):
        text = exc.data[0] if exc.data and isinstance(exc.data[0], str) else ""
        return f"{exc.name}: {text}" if text else str(exc.name)
    if isinstance(exc, TimeoutError):
        return "no answer in time"
    return str(exc)


def _unwrap(message: Any) -> tuple[Any, ...]:
    from jeepney.wrappers import unwrap_msg

    return unwrap_msg(message)


class PortalShortcut:
    """Binds one global shortcut through the portal and calls ``callback`` (in a thread of its own) each
    time it is activated.

    The same shape as :class:`~textdrop.desktop.capture.xgrab.XKeyGrab`: :meth:`start`, :meth:`stop`,
    :meth:`is_alive`.

    Args:
        modifiers: pynput modifier names.
        key: One pynput key name.
        callback: Called with no arguments from the reading thread on each ``Activated`` signal.
        bus: ``"SESSION"`` or a D-Bus address (tests pass a private bus).
        timeout_s: Seconds to wait for each portal answer (the bind may wait for the user).
    """

    def __init__(
        self,
        modifiers: list[str],
        key: str,
        callback: Callable[[], None],
        *,
        bus: str = "SESSION",
        timeout_s: float = TIMEOUT_S,
    ) -> None:
        self._modifiers, self._key = modifiers, key
        self.trigger = ""
        """What was asked for, e.g. ``CTRL+ALT+o``, after start."""
        self.bound_as = ""
        """The desktop's description of the trigger it bound (its ``trigger_description``), after start."""
        self._callback = callback
        self._bus = bus
        self._timeout_s = timeout_s
        self._conn: Any = None
        self._session = ""
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Create a portal session, bind the shortcut and start the reading thread; blocks until the
        desktop answers (it may ask the user first).

        Raises:
            GrabError: No session bus, no GlobalShortcuts portal, the desktop (or the user) refused the
                shortcut, or the hotkey uses AltGr; the message says what to do.
        """
        from jeepney import DBusErrorResponse
        from jeepney.io.blocking import open_dbus_connection

        self.trigger = preferred_trigger(self._modifiers, self._key)
        try:
            self._conn = open_dbus_connection(self._bus)
        except (KeyError, OSError, TimeoutError, ValueError) as exc:
            raise GrabError(f"{_NO_BUS.capitalize()} ({exc}). {FALLBACK}") from exc
        try:
            self._bind()
        except (DBusErrorResponse, OSError, TimeoutError, GrabError) as exc:
            self._close()
            if isinstance(exc, GrabError):
                raise
            raise GrabError(
                f"The desktop's portal could not bind the global shortcut ({_detail(exc)}). {FALLBACK}"
            ) from exc
        self._stopping.clear()
        self._thread = threading.Thread(target=self._run, name="textdrop-portal-hotkey", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Close the portal session (unbinding the shortcut) and end the thread; it has ended when this
        returns. Idempotent."""
        thread, self._thread = self._thread, None
        self._stopping.set()
        if thread is not None:
            thread.join()
        self._close()

    def is_alive(self) -> bool:
        """Whether the reading thread runs."""
        return self._thread is not None and self._thread.is_alive()

    def _bind(self) -> None:
        from jeepney import DBusAddress, MatchRule, message_bus, new_method_call

        portal = DBusAddress(PATH, SERVICE, INTERFACE)
        for member, interface in (("Response", REQUEST_INTERFACE), ("Activated", INTERFACE)):
            rule = MatchRule(type="signal", interface=interface, member=member)
            _unwrap(self._conn.send_and_get_reply(message_bus.AddMatch(rule), timeout=self._timeout_s))
        token = f"textdrop_{secrets.token_hex(8)}"
        options = {"handle_token": ("s", token), "session_handle_token": ("s", token)}
        code, results = self._request(new_method_call(portal, "CreateSession", "a{sv}", (options,)))
        session = results.get("session_handle", ("s", ""))[1]
        if code != 0 or not session:
            why = f"The desktop's portal refused a global shortcuts session (code {code})."
            raise GrabError(f"{why} {FALLBACK}")
        self._session = session
        shortcut = {"description": ("s", DESCRIPTION), "preferred_trigger": ("s", self.trigger)}
        options = {"handle_token": ("s", f"textdrop_{secrets.token_hex(8)}")}
        body = (session, [(SHORTCUT_ID, shortcut)], "", options)
        code, results = self._request(new_method_call(portal, "BindShortcuts", "oa(sa{sv})sa{sv}", body))
        bound = dict(results.get("shortcuts", ("a(sa{sv})", []))[1])
        if code != 0 or SHORTCUT_ID not in bound:
            why = "cancelled" if code == 1 else "not bound" if code == 0 else f"code {code}"
            raise GrabError(f"The desktop did not bind the shortcut {self.trigger} ({why}). {FALLBACK}")
        self.bound_as = bound[SHORTCUT_ID].get("trigger_description", ("s", ""))[1] or self.trigger
        log.info("the portal bound the capture shortcut %s (%s)", self.trigger, self.bound_as)

    def _request(self, message: Any) -> tuple[int, dict[str, Any]]:
        """Call a portal method that answers with a Request handle; wait for its Response signal.

        Returns:
            The response code and results map (values as jeepney's ``(signature, value)`` pairs).

        Raises:
            DBusErrorResponse: The call failed (no portal, no such interface or method).
            TimeoutError: No answer within the timeout.
        """
        from jeepney import HeaderFields, MatchRule

        deadline = time.monotonic() + self._timeout_s
        rule = MatchRule(type="signal", interface=REQUEST_INTERFACE, member="Response")
        # Responses that arrive before the method's reply (a fast portal) are kept by the filter.
        with self._conn.filter(rule, bufsize=16) as responses:
            handle = _unwrap(self._conn.send_and_get_reply(message, timeout=self._timeout_s))[0]
            while True:
                while responses:
                    signal = responses.popleft()
                    if signal.header.fields.get(HeaderFields.path) == handle:
                        return signal.body
                self._conn.recv_messages(timeout=max(0.0, deadline - time.monotonic()))

    def _run(self) -> None:
        from jeepney import MatchRule

        rule = MatchRule(type="signal", interface=INTERFACE, member="Activated", path=PATH)
        with self._conn.filter(rule, bufsize=16) as activations:
            while not self._stopping.is_set():
                try:
                    signal = self._conn.recv_until_filtered(activations, timeout=0.2)
                except TimeoutError:
                    continue
                except OSError as exc:  # the bus went away
                    log.warning("lost the desktop's portal: %s", exc)
                    return
                session, shortcut_id = signal.body[0], signal.body[1]
                if session == self._session and shortcut_id == SHORTCUT_ID:
                    self._callback()

    def _close(self) -> None:
        from jeepney import DBusAddress, new_method_call

        conn, self._conn = self._conn, None
        if conn is None:
            return
        if self._session:
            try:
                conn.send(new_method_call(DBusAddress(self._session, SERVICE, SESSION_INTERFACE), "Close"))
            except OSError as exc:
                log.debug("could not close the portal session: %s", exc)
            self._session = ""
        conn.close()
