"""Running the API: the safe-address rule, the listening socket, and uvicorn in the foreground or a thread.

The socket is bound before uvicorn starts, in the caller's thread, so a port in use or an address that is
not this machine's is a one-line :class:`UsageError` rather than a log line from inside the server, and
``--port 0`` works (the chosen port is known at once).
"""

from __future__ import annotations

import contextlib
import ipaddress
import logging
import os
import socket
import threading
import time
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

from textdrop.engine.errors import TextdropError, UsageError

if TYPE_CHECKING:
    import uvicorn

    from textdrop.engine.documents.sources import SourceLimits
    from textdrop.engine.jobs import JobQueue
    from textdrop.engine.registry import RecognizeOptions
    from textdrop.server.options import ServerOptions
    from textdrop.server.service import OcrService
    from textdrop.settings import Settings

log = logging.getLogger(__name__)

START_TIMEOUT = 30.0
"""Seconds :meth:`ApiServer.start` waits for uvicorn to accept connections."""

SHUTDOWN_GRACE = 5
"""Seconds uvicorn waits for open requests (and event streams) before closing them at stop."""

INSTALL_HINT = "Install it with: pip install 'textdrop[server]'"


def is_loopback(host: str, *, resolve: bool = True) -> bool:
    """Whether ``host`` (an address, ``localhost`` or a name) reaches only this machine.

    With ``resolve``, a name counts when every address it resolves to is loopback; without, or when it
    does not resolve, it does not.
    """
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        if not resolve:
            return False
    try:
        infos = socket.getaddrinfo(host, None)
    except OSError:
        return False
    return bool(infos) and all(ipaddress.ip_address(info[4][0]).is_loopback for info in infos)


def check_bind(host: str, token: str | None, token_env: str = "TEXTDROP_TOKEN") -> None:
    """Refuse to listen beyond this machine without a token.

    Raises:
        UsageError: ``host`` is not loopback and ``token`` is empty.
    """
    if not token and not is_loopback(host):
        raise UsageError(
            f"Refusing to listen on {host} without a token: anyone who can reach that address could "
            f"read documents through this machine. Set a token (--token, or the {token_env} environment "
            "variable) or listen on 127.0.0.1."
        )


def bind(host: str, port: int) -> socket.socket:
    """A TCP socket listening on ``host``:``port`` (``port`` 0: any free port), for uvicorn to serve.

    Raises:
        UsageError: the address is not this machine's, the port is taken, or binding is not allowed.
    """
    try:
        family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
        sock = socket.socket(family, kind, proto)
    except OSError as exc:
        message = f"Cannot listen on {host}: {exc.strerror or exc}; give an address of this machine."
        raise UsageError(message) from exc
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen()  # connections wait in the backlog until uvicorn accepts them
    except OSError as exc:
        sock.close()
        raise UsageError(
            f"Cannot listen on {host}:{port}: {exc.strerror or exc}; choose another port with --port."
        ) from exc
    return sock


class ApiServer:
    """The API on a bound socket: :meth:`run` in the foreground, or :meth:`start` / :meth:`stop` in a thread.

    Args:
        service: what the routes use.
        sock: the bound socket (see :func:`bind`).
        token: the bearer token (``None``: none).
        stop_queue: stop the service's queue when the server stops (``textdrop serve`` owns its queue; the
            tray does not).
        grace: seconds the queue's running job may take to finish at stop.
    """

    def __init__(
        self,
        service: OcrService,
        sock: socket.socket,
        *,
        token: str | None,
        stop_queue: bool = False,
        grace: float = 10.0,
    ) -> None:
        import uvicorn

        from textdrop.server.app import create_app

        self.service = service
        self.socket = sock
        self._thread: threading.Thread | None = None

        @contextlib.asynccontextmanager
        async def lifespan(_app: object) -> AsyncIterator[None]:
            yield
            service.cancel_all()  # the jobs of a server that is gone: nobody would collect them
            if stop_queue:
                from starlette.concurrency import run_in_threadpool

                await run_in_threadpool(service.queue.stop, grace=grace)

        app = create_app(service, token=token, lifespan=lifespan)
        config = uvicorn.Config(app, log_config=None, timeout_graceful_shutdown=SHUTDOWN_GRACE)
        self.server: uvicorn.Server = uvicorn.Server(config)

    @property
    def url(self) -> str:
        """``http://host:port`` of the socket (IPv6 addresses in brackets)."""
        host, port = self.socket.getsockname()[:2]
        return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"

    def run(self) -> None:
        """Serve until SIGINT or SIGTERM (main thread) or :meth:`stop` (another thread)."""
        self.server.run(sockets=[self.socket])

    def start(self) -> ApiServer:
        """Serve in a daemon thread; returns once connections are accepted.

        Raises:
            TextdropError: the server did not start within :data:`START_TIMEOUT` seconds.
        """
        self._thread = threading.Thread(target=self.run, name="textdrop-api", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + START_TIMEOUT
        while not self.server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                self.stop()
                raise TextdropError("The HTTP API did not start; run with -v to see why.")
            time.sleep(0.01)
        log.info("HTTP API listening on %s", self.url)
        return self

    def stop(self, timeout: float = SHUTDOWN_GRACE + 5) -> None:
        """Stop serving: open requests get :data:`SHUTDOWN_GRACE` seconds, their jobs are cancelled."""
        self.server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout)
        self.socket.close()


def make_server(
    queue: JobQueue,
    options: ServerOptions,
    *,
    recognize: RecognizeOptions,
    limits: SourceLimits,
    token: str | None,
    stop_queue: bool = False,
    grace: float = 10.0,
) -> ApiServer:
    """Check the address, bind it, and build the server over ``queue`` (not started).

    Raises:
        UsageError: a non-loopback address without a token, a port in use, FastAPI or uvicorn missing.
    """
    try:
        import fastapi  # noqa: F401
        import uvicorn  # noqa: F401
    except ImportError as exc:
        raise UsageError(f"The HTTP API needs FastAPI and uvicorn ({exc}). {INSTALL_HINT}") from exc
    from textdrop.server.service import OcrService

    check_bind(options.host, token, options.token_env)
    sock = bind(options.host, options.port)
    service = OcrService(queue, options, recognize, limits)
    return ApiServer(service, sock, token=token, stop_queue=stop_queue, grace=grace)


def start_in_background(settings: Settings, queue: JobQueue) -> ApiServer | None:
    """The tray app's hook: run the API over the tray's queue when ``[server] enabled`` is set.

    The token comes from the environment variable ``[server] token_env`` names.

    Returns:
        The running server (call :meth:`ApiServer.stop` at quit), or ``None`` when it is not enabled.

    Raises:
        UsageError: see :func:`make_server`.
        TextdropError: the server did not start.
    """
    options = settings.server
    if not options.enabled:
        return None
    token = os.environ.get(options.token_env) or None
    server = make_server(queue, options, recognize=settings.recognize, limits=settings.sources, token=token)
    return server.start()
