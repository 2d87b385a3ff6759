"""``textdrop serve``: the HTTP API in the foreground, over a job queue of its own.

FastAPI and uvicorn (the ``server`` extra) are imported only when the command runs; without them it says
how to install them. :mod:`textdrop.cli` parses the arguments and maps errors to exit codes.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import signal

from rich.console import Console

from textdrop.engine.errors import ExitCode

log = logging.getLogger(__name__)

err = Console(stderr=True, highlight=False, soft_wrap=True)


def add_parser(commands: argparse._SubParsersAction) -> None:
    """Add ``serve`` to the ``textdrop`` parser."""
    serve = commands.add_parser("serve", help="run the HTTP API (OCR for other programs; docs at /docs)")
    serve.add_argument("--host", help="address to listen on (default: 127.0.0.1; others need a token)")
    serve.add_argument("--port", type=int, help="TCP port (default: 8765; 0: any free port)")
    serve.add_argument(
        "--token", help="bearer token clients must send (default: the TEXTDROP_TOKEN environment variable)"
    )
    serve.add_argument(
        "-e", "--engine", help="default engine name, or 'auto' (default: from the config file)"
    )


def run_serve(args: argparse.Namespace) -> int:
    """Serve until SIGINT or SIGTERM (both a clean stop: exit code 0); returns the exit code.

    Raises:
        UsageError: FastAPI or uvicorn missing, a non-loopback address without a token, a port in use.
        EngineUnavailableError: the default engine is unknown or not available here.
    """
    from textdrop.engine.jobs import JobQueue
    from textdrop.server.run import make_server
    from textdrop.settings import load_settings

    settings = load_settings()
    update = {key: getattr(args, key) for key in ("host", "port") if getattr(args, key) is not None}
    options = settings.server.model_copy(update=update)
    token = args.token or os.environ.get(options.token_env) or None
    queue = JobQueue(
        args.engine or settings.engine,
        options=settings.recognize,
        limits=settings.sources,
        backends=settings.backends(),
        name="textdrop-api-jobs",
    )
    server = make_server(
        queue,
        options,
        recognize=settings.recognize,
        limits=settings.sources,
        token=token,
        stop_queue=True,
        grace=settings.watch.grace_seconds,
    )
    queue.start()  # the worker loads the engine while the server starts
    err.print(
        f"textdrop serve: listening on {server.url} (engine {queue.engine}"
        f"{', token required' if token else ''}); API docs at {server.url}/docs. Ctrl-C stops."
    )
    signal.signal(signal.SIGTERM, signal.default_int_handler)  # uvicorn re-raises it once it has stopped
    with contextlib.suppress(KeyboardInterrupt):
        server.run()
    err.print("textdrop serve: stopped.")
    return ExitCode.OK
