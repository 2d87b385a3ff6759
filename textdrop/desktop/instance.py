"""One tray app per user: a local socket (QLocalServer: a Unix socket, a Windows named pipe; never a TCP
port) through which a second launch, or ``textdrop capture``, hands its request to the running app.

Protocol: the client writes one line, a command (:data:`COMMANDS`), and reads one line back (``ok``,
or ``error: …``). ``capture`` is answered only when the capture has ended, with its exit code and a message
(``0 copied 42 characters``, ``130 cancelled``), so that ``textdrop capture`` can wait for it and exit with
that code (a desktop shortcut bound to it then behaves like the hotkey).
"""

from __future__ import annotations

import getpass
import hashlib
import logging
from collections.abc import Callable

from PySide6.QtCore import QObject, Signal
from PySide6.QtNetwork import QLocalServer, QLocalSocket

from textdrop.settings import data_dir

log = logging.getLogger(__name__)

COMMANDS = ("ping", "show", "capture", "ocr-clipboard", "settings", "quit")
"""What a client may ask: ``show`` opens the drop window (what a second ``textdrop tray`` asks for)."""

TIMEOUT_MS = 2000
"""How long a client waits to connect, and then for the answer, in milliseconds."""
WAITED = frozenset({"capture"})
"""Commands answered when they have finished (the tray calls the reply function), not at once."""

Reply = Callable[[str], None]
"""Sends the answer line of a waited command (see :data:`WAITED`) back to the client."""


def server_name() -> str:
    """The socket's name: per user, and per data folder (so ``TEXTDROP_HOME`` gives tests their own)."""
    folder = hashlib.sha256(str(data_dir()).encode()).hexdigest()[:12]
    return f"textdrop-{getpass.getuser()}-{folder}"


def send_request(
    command: str, timeout_ms: int = TIMEOUT_MS, *, answer_timeout_ms: int | None = None
) -> str | None:
    """Send ``command`` to the running tray app; its answer, or ``None`` when none is running.

    Works without a Qt event loop (blocking waits: ``timeout_ms`` to connect, then ``answer_timeout_ms``,
    default ``timeout_ms``, for each part of the answer; ``-1`` waits as long as the app keeps the socket).

    Raises:
        ValueError: ``command`` is not one of :data:`COMMANDS`.
    """
    if command not in COMMANDS:
        raise ValueError(f"unknown command {command!r}")
    socket = QLocalSocket()
    socket.connectToServer(server_name())
    if not socket.waitForConnected(timeout_ms):
        return None
    socket.write(f"{command}\n".encode())
    socket.flush()
    answer = b""
    wait_ms = timeout_ms if answer_timeout_ms is None else answer_timeout_ms
    while not answer.endswith(b"\n") and socket.waitForReadyRead(wait_ms):
        answer += bytes(socket.readAll().data())
    socket.disconnectFromServer()
    return answer.decode(errors="replace").strip() or None


class InstanceServer(QObject):
    """Listens for requests from later launches; emits :attr:`request` with each command (GUI thread).

    Signals:
        request(str): a command from :data:`COMMANDS` (``ping`` is answered here and not emitted).
        waited(str, object): a command from :data:`WAITED` and its :data:`Reply`, which the receiver must
            call once (a client that went away meanwhile is ignored).
    """

    request = Signal(str)
    waited = Signal(str, object)

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._server = QLocalServer(self)
        self._server.setSocketOptions(QLocalServer.SocketOption.UserAccessOption)
        self._server.newConnection.connect(self._accept)

    def listen(self) -> bool:
        """Start listening; False when another app already answers on the socket.

        A socket file left behind by a crashed app (nobody answers) is removed first.
        """
        name = server_name()
        if send_request("ping", timeout_ms=500) is not None:
            return False
        QLocalServer.removeServer(name)
        if not self._server.listen(name):
            log.warning("cannot listen on %s: %s", name, self._server.errorString())
            return False
        log.debug("listening on %s", self._server.fullServerName())
        return True

    def close(self) -> None:
        """Stop listening and remove the socket."""
        self._server.close()

    def _accept(self) -> None:
        while (socket := self._server.nextPendingConnection()) is not None:
            socket.readyRead.connect(lambda s=socket: self._read(s))
            socket.disconnected.connect(socket.deleteLater)

    def _read(self, socket: QLocalSocket) -> None:
        if not socket.canReadLine():
            return
        command = bytes(socket.readLine().data()).decode(errors="replace").strip()
        if command not in COMMANDS:
            socket.write(b"error: unknown command\n")
        elif command in WAITED:
            self.waited.emit(command, lambda line, s=socket: _answer(s, line))
            return
        else:
            socket.write(b"ok\n")
            if command != "ping":
                self.request.emit(command)
        socket.flush()


def _answer(socket: QLocalSocket, line: str) -> None:
    """Write the answer of a waited command, if its client is still connected."""
    try:
        if socket.state() != QLocalSocket.LocalSocketState.ConnectedState:
            log.debug("the client left before its answer: %s", line)
            return
        socket.write(f"{line}\n".encode())
        socket.flush()
    except RuntimeError:  # the socket object was deleted (the client disconnected)
        log.debug("the client left before its answer: %s", line)
