"""One tray app per user: a local socket (QLocalServer: a Unix socket, a Windows named pipe; never a TCP
port) through which a second launch, or ``textdrop capture``, hands its request to the running app.

Protocol: the client writes one line, a command (:data:`COMMANDS`), and reads one line back (``ok``,
or ``error: …``).
"""

from __future__ import annotations

import getpass
import hashlib
import logging

from PySide6.QtCore import QObject, Signal
from PySide6.QtNetwork import QLocalServer, QLocalSocket

from textdrop.settings import data_dir

log = logging.getLogger(__name__)

COMMANDS = ("ping", "show", "capture", "ocr-clipboard", "settings", "quit")
"""What a client may ask: ``show`` opens the drop window (what a second ``textdrop tray`` asks for)."""

TIMEOUT_MS = 2000
"""How long a client waits to connect, and then for the answer, in milliseconds."""


def server_name() -> str:
    """The socket's name: per user, and per data folder (so ``TEXTDROP_HOME`` gives tests their own)."""
    folder = hashlib.sha256(str(data_dir()).encode()).hexdigest()[:12]
    return f"textdrop-{getpass.getuser()}-{folder}"


def send_request(command: str, timeout_ms: int = TIMEOUT_MS) -> str | None:
    """Send ``command`` to the running tray app; its answer, or ``None`` when none is running.

    Works without a Qt event loop (blocking waits, at most ``2 × timeout_ms``).

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
    while not answer.endswith(b"\n") and socket.waitForReadyRead(timeout_ms):
        answer += bytes(socket.readAll().data())
    socket.disconnectFromServer()
    return answer.decode(errors="replace").strip() or None


class InstanceServer(QObject):
    """Listens for requests from later launches; emits :attr:`request` with each command (GUI thread).

    Signals:
        request(str): a command from :data:`COMMANDS` (``ping`` is answered here and not emitted).
    """

    request = Signal(str)

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
        else:
            socket.write(b"ok\n")
            if command != "ping":
                self.request.emit(command)
        socket.flush()
