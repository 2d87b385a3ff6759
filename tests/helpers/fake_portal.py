"""A private D-Bus session bus with a fake xdg-desktop-portal serving the GlobalShortcuts interface.

:func:`private_session_bus` starts ``dbus-daemon --session`` and yields its address; :class:`FakePortal`
owns ``org.freedesktop.portal.Desktop`` on it and answers the way xdg-desktop-portal does (the
interface's ``version`` property, ``CreateSession`` and ``BindShortcuts`` answered by a Request
``Response`` signal, ``Session.Close``), records what clients sent, and emits ``Activated`` on demand.
Served with jeepney from a thread of its own.
"""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import threading
from collections.abc import Iterator
from typing import Any

import pytest

SERVICE = "org.freedesktop.portal.Desktop"
PATH = "/org/freedesktop/portal/desktop"
INTERFACE = "org.freedesktop.portal.GlobalShortcuts"


@contextlib.contextmanager
def private_session_bus() -> Iterator[str]:
    """Start a private session bus; yields its address. Skips the test where dbus-daemon is missing."""
    daemon = shutil.which("dbus-daemon")
    if daemon is None:
        pytest.skip("needs dbus-daemon (Debian package dbus-daemon)")
    process = subprocess.Popen(
        [daemon, "--session", "--nofork", "--print-address=1"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        yield process.stdout.readline().strip()  # type: ignore[union-attr]
    finally:
        process.terminate()
        process.wait(10)


class FakePortal:
    """Serves ``org.freedesktop.portal.Desktop`` on ``address`` until :meth:`close`.

    Args:
        address: The bus address.
        globalshortcuts: Whether the GlobalShortcuts interface is offered (a portal without it answers
            ``UnknownInterface`` to the version and ``UnknownMethod`` to calls, as xdg-desktop-portal does
            for interfaces its backend lacks).
        bind_code: The Response code to BindShortcuts (0 bound, 1 the user cancelled).
        session_error: When set, ``(name, message)`` of the D-Bus error ``CreateSession`` answers with
            (xdg-desktop-portal 1.21+ refuses host apps without an app id with NotAllowed).

    Attributes:
        sessions: ``CreateSession`` options received, in order.
        binds: ``(session_handle, shortcuts, parent_window, options)`` of each ``BindShortcuts`` call.
        closed: Session handles closed with ``org.freedesktop.portal.Session.Close``.
    """

    def __init__(
        self,
        address: str,
        *,
        globalshortcuts: bool = True,
        bind_code: int = 0,
        session_error: tuple[str, str] | None = None,
    ) -> None:
        from jeepney import message_bus
        from jeepney.io.blocking import open_dbus_connection
        from jeepney.wrappers import unwrap_msg

        self.sessions: list[dict[str, Any]] = []
        self.binds: list[tuple[str, list[tuple[str, dict[str, Any]]], str, dict[str, Any]]] = []
        self.closed: list[str] = []
        self._offer = globalshortcuts
        self._bind_code = bind_code
        self._session_error = session_error
        self._session = ""
        self._lock = threading.Lock()
        self._conn = open_dbus_connection(address)
        assert unwrap_msg(self._conn.send_and_get_reply(message_bus.RequestName(SERVICE)))[0] == 1
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, name="fake-portal", daemon=True)
        self._thread.start()

    def activate(self, shortcut_id: str = "capture", session: str | None = None) -> None:
        """Emit ``Activated`` for ``shortcut_id`` in the last session (or ``session``)."""
        from jeepney import DBusAddress, new_signal

        body = (session or self._session, shortcut_id, 1234, {})
        self._send(new_signal(DBusAddress(PATH, interface=INTERFACE), "Activated", "osta{sv}", body))

    def close(self) -> None:
        """Stop serving and disconnect."""
        self._stop.set()
        self._thread.join(10)
        self._conn.close()

    def _send(self, message: Any) -> None:
        with self._lock:
            self._conn.send(message)

    def _serve(self) -> None:
        from jeepney import HeaderFields, MessageType

        while not self._stop.is_set():
            try:
                message = self._conn.receive(timeout=0.1)
            except TimeoutError:
                continue
            if message.header.message_type == MessageType.method_call:
                fields = message.header.fields
                self._answer(message, fields.get(HeaderFields.interface), fields[HeaderFields.member])

    def _answer(self, message: Any, interface: str, member: str) -> None:
        from jeepney import HeaderFields, new_error, new_method_return

        sender = message.header.fields[HeaderFields.sender].lstrip(":").replace(".", "_")
        if interface == "org.freedesktop.DBus.Properties" and member == "Get":
            if self._offer and tuple(message.body) == (INTERFACE, "version"):
                self._send(new_method_return(message, "v", (("u", 1),)))
            else:
                error = "org.freedesktop.DBus.Error.UnknownInterface"
                self._send(new_error(message, error, "s", (f"No such interface {message.body[0]}",)))
        elif interface == INTERFACE and self._offer and member == "CreateSession":
            (options,) = message.body
            self.sessions.append(options)
            if self._session_error is not None:
                self._send(new_error(message, self._session_error[0], "s", (self._session_error[1],)))
                return
            self._session = f"{PATH}/session/{sender}/{options['session_handle_token'][1]}"
            handle = f"{PATH}/request/{sender}/{options['handle_token'][1]}"
            self._respond(message, handle, 0, {"session_handle": ("s", self._session)})
        elif interface == INTERFACE and self._offer and member == "BindShortcuts":
            session, shortcuts, parent_window, options = message.body
            self.binds.append((session, shortcuts, parent_window, options))
            bound = [(sid, {"trigger_description": props["preferred_trigger"]}) for sid, props in shortcuts]
            results = {"shortcuts": ("a(sa{sv})", bound)} if self._bind_code == 0 else {}
            handle = f"{PATH}/request/{sender}/{options['handle_token'][1]}"
            self._respond(message, handle, self._bind_code, results)
        elif interface == "org.freedesktop.portal.Session" and member == "Close":
            self.closed.append(message.header.fields[HeaderFields.path])
            self._send(new_method_return(message))
        else:
            error = "org.freedesktop.DBus.Error.UnknownMethod"
            self._send(new_error(message, error, "s", (f"No such method {interface}.{member}",)))

    def _respond(self, message: Any, handle: str, code: int, results: dict[str, Any]) -> None:
        """Reply with the request handle, then emit its Response (xdg-desktop-portal's order)."""
        from jeepney import DBusAddress, new_method_return, new_signal

        self._send(new_method_return(message, "o", (handle,)))
        response = DBusAddress(handle, interface="org.freedesktop.portal.Request")
        self._send(new_signal(response, "Response", "ua{sv}", (code, results)))
