"""The folder sub-commands of ``textdrop``: ``watch``, ``folders add|remove|list`` and ``status``.

They compose the configuration (:mod:`textdrop.settings`), the job queue, the ledger and the watch service;
:mod:`textdrop.cli` parses the arguments and maps errors to exit codes.
"""

from __future__ import annotations

import argparse
import json
import logging
import logging.handlers
import os
import signal
import sys
import threading
from datetime import UTC, datetime
from pathlib import Path

import tomlkit
from filelock import FileLock, Timeout
from rich.console import Console
from rich.markup import escape

from textdrop.engine.documents.sources import file_label
from textdrop.engine.errors import ExitCode, FileAccessError, UsageError
from textdrop.engine.jobs import JobQueue
from textdrop.engine.registry import resolve_engine_name
from textdrop.settings import (
    Settings,
    data_dir,
    edit_settings,
    folder_table,
    ledger_path,
    load_settings,
    log_dir,
    watch_lock_path,
)
from textdrop.watcher.ledger import Ledger, Status
from textdrop.watcher.service import FileEvent, FolderOptions, WatchService, check_folders

log = logging.getLogger(__name__)

LOG_FILE = "textdrop.log"
LOG_BYTES = 1_000_000
LOG_BACKUPS = 3
"""The watcher's log rotates at 1 MB, keeping three old files."""

out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)
note = Console(stderr=True, highlight=False, soft_wrap=True)
"""Progress and success lines; silenced by ``-q`` (errors go to :data:`err`)."""


def add_parsers(commands: argparse._SubParsersAction) -> None:
    """Add ``watch``, ``folders`` and ``status`` to the ``textdrop`` parser."""
    watch = commands.add_parser(
        "watch", help="give every image and PDF arriving in folders a Markdown sidecar, until stopped"
    )
    watch.add_argument(
        "folders", nargs="*", type=Path, metavar="FOLDER", help="folders to watch (default: the configured)"
    )
    watch.add_argument("--once", action="store_true", help="process what is there, then exit")
    watch.add_argument("--poll", action="store_true", help="poll instead of native events (network shares)")
    watch.add_argument("-r", "--recursive", action="store_true", help="with FOLDER: watch sub-folders too")
    watch.add_argument("--settle", type=float, metavar="SECONDS", help="with FOLDER: settle time (default 2)")
    watch.add_argument("-o", "--out-dir", type=Path, help="with FOLDER: write sidecars here")
    watch.add_argument("-e", "--engine", help="engine name, or 'auto' (default: from the config file)")
    watch.add_argument(
        "--status", action="store_true", help="show what the watcher has done (textdrop status)"
    )
    watch.add_argument("--json", action="store_true", help="with --status: print it as JSON")

    folders = commands.add_parser("folders", help="list, add or remove watched folders in the config file")
    folders.add_argument("--json", action="store_true", help="list the folders as JSON")
    actions = folders.add_subparsers(dest="action", metavar="ACTION")
    add = actions.add_parser("add", help="watch a folder")
    add.add_argument("path", type=Path, help="the folder")
    add.add_argument("-r", "--recursive", action="store_true", help="watch its sub-folders too")
    add.add_argument("--poll", action="store_true", help="poll instead of native events (network shares)")
    add.add_argument("--settle", type=float, metavar="SECONDS", help="settle time (default 2)")
    add.add_argument(
        "-p",
        "--pattern",
        action="append",
        dest="patterns",
        help="file name pattern, e.g. '*.pdf' (repeatable)",
    )
    add.add_argument("-o", "--out-dir", type=Path, help="write sidecars here instead of beside each file")
    add.add_argument("-e", "--engine", help="engine for this folder (default: the configured one)")
    add.add_argument("--template", help="sidecar name template, e.g. '{stem}.{ext}'")
    remove = actions.add_parser("remove", help="stop watching a folder")
    remove.add_argument("path", type=Path, help="the folder, as listed")
    listing = actions.add_parser("list", help="show the watched folders (the default)")
    listing.add_argument("--json", action="store_true", default=argparse.SUPPRESS, help="print them as JSON")

    status = commands.add_parser("status", help="what the watcher has done: counts, failures, backlog")
    status.add_argument("--json", action="store_true", help="print it as JSON")


def run_watch(args: argparse.Namespace) -> int:
    """``textdrop watch``: run the watch service until SIGINT/SIGTERM, or with ``--once`` until idle."""
    if args.status:
        return run_status(args)
    settings = load_settings()
    folders = _watch_folders(args, settings)
    check_folders(folders)
    for name in {folder.engine for folder in folders if folder.engine} | {args.engine or settings.engine}:
        resolve_engine_name(name)
    _ensure_folder(data_dir(), "data folder")
    lock = FileLock(watch_lock_path())
    try:
        lock.acquire(timeout=0)
    except Timeout:  # an OSError too: before the clause below
        raise UsageError(
            "Another textdrop watcher is already running for this user (textdrop status shows what it "
            "does). Stop it first, or add your folders to it with: textdrop folders add"
        ) from None
    except OSError as exc:
        raise _location_error(watch_lock_path(), "lock file", exc) from exc
    try:
        handler = _log_to_file()
    except BaseException:
        lock.release()
        raise
    stop = threading.Event()
    signalled: list[int] = []

    def terminate(signum: int, frame: object) -> None:
        signalled.append(signum)
        stop.set()

    previous = signal.signal(signal.SIGTERM, terminate)
    failed = threading.Event()

    def report(event: FileEvent) -> None:
        name = escape(file_label(event.path))
        sidecar = escape(file_label(event.sidecar)) if event.sidecar else ""
        if event.status == "done":
            pages = f"{event.pages} page{'s' if event.pages != 1 else ''}"
            note.print(f"[green]✓[/green] {name} → {sidecar} ({pages}, {event.seconds:.1f} s)")
        elif event.status == "reused":
            note.print(f"[green]✓[/green] {name} → {sidecar} (same content as another file)")
        elif event.status == "retry":
            note.print(f"[yellow]↻[/yellow] {name}: {escape(event.message)} (will retry)")
        else:
            failed.set()
            err.print(f"[red]✗[/red] {name}: {escape(event.message)}")
        for warning in event.warnings:
            err.print(f"[yellow]![/yellow] {name}: {escape(warning)}")

    clean = True
    try:
        with Ledger(ledger_path()) as ledger:
            jobs = JobQueue(
                args.engine or settings.engine,
                options=settings.recognize,
                limits=settings.sources,
                backends=settings.backends(),
            )
            jobs.start()
            service = WatchService(
                folders,
                ledger=ledger,
                jobs=jobs,
                options=settings.watch,
                limits=settings.sources,
                template=settings.sidecar.template,
                observe=not args.once,
                on_event=report,
            )
            try:
                jobs.loaded.result()
                service.start()
                names = ", ".join(file_label(folder.path) for folder in folders)
                if args.once:
                    note.print(f"Reading what is in {escape(names)} …")
                    while not stop.is_set() and not service.wait_idle(timeout=0.5):
                        service.check()
                else:
                    note.print(f"Watching {escape(names)}; press Ctrl+C to stop.")
                    while not stop.wait(0.5):
                        service.check()
                service.check()  # a service that died is an error, never a clean exit
            except KeyboardInterrupt:
                signalled.append(signal.SIGINT)
                note.print("Stopping …")
            finally:
                service.stop()
                clean = jobs.stop(grace=settings.watch.grace_seconds, cancel_pending=True)
                if not clean:
                    log.warning("the page being read did not finish in time; abandoned (it stays pending)")
    finally:
        signal.signal(signal.SIGTERM, previous)
        lock.release()
        logging.getLogger().removeHandler(handler)
        handler.close()
    # --once is a batch: a signal cut it short (130 for SIGINT, 143 for SIGTERM). A service stopped by a
    # signal has done its job: 0, as init systems expect.
    code = ExitCode(128 + signalled[0]) if signalled and args.once else ExitCode.OK
    if not clean:  # the worker is stuck in a page: leave without waiting for it (nothing is half-written)
        os._exit(code or ExitCode.INTERRUPTED)
    if code == ExitCode.OK and failed.is_set() and args.once:
        return ExitCode.OTHER_ERROR
    return code


def _watch_folders(args: argparse.Namespace, settings: Settings) -> list[FolderOptions]:
    if args.folders:
        folders = [
            FolderOptions(
                path=path,
                recursive=args.recursive,
                polling=args.poll,
                output=args.out_dir,
                **({"settle_seconds": args.settle} if args.settle is not None else {}),
            )
            for path in args.folders
        ]
    else:
        if args.recursive or args.settle is not None or args.out_dir is not None:
            raise UsageError(
                "--recursive, --settle and --out-dir apply to folders named on the command line."
            )
        folders = settings.folders
        if args.poll:
            folders = [folder.model_copy(update={"polling": True}) for folder in folders]
    if not folders:
        raise UsageError(
            "No folders to watch. Name one (textdrop watch FOLDER) or add one: textdrop folders add"
        )
    return folders


def _outcomes_off_console(record: logging.LogRecord) -> bool:
    return not record.name.startswith("textdrop.watcher.service")


def _log_to_file() -> logging.Handler:
    """Log INFO and above to the rotating log file, and keep per-file outcomes off the console (they
    are printed there as ✓/✗ lines). Returns the file handler, for the caller to remove."""
    folder = _ensure_folder(log_dir(), "log folder")
    try:
        handler = logging.handlers.RotatingFileHandler(
            folder / LOG_FILE,
            maxBytes=LOG_BYTES,
            backupCount=LOG_BACKUPS,
            encoding="utf-8",
            errors="backslashreplace",  # a path with bytes that are not UTF-8 never loses a log line
        )
    except OSError as exc:
        raise _location_error(folder / LOG_FILE, "log file", exc) from exc
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.setLevel(logging.INFO)
    root = logging.getLogger()
    for console in root.handlers:
        console.addFilter(_outcomes_off_console)
        if console.level == logging.NOTSET:
            console.setLevel(root.level)
    root.addHandler(handler)
    root.setLevel(min(root.level, logging.INFO))
    return handler


def _ensure_folder(folder: Path, what: str) -> Path:
    """Create ``folder`` (and its parents) unless it exists; returns it.

    Raises:
        FileAccessError: it cannot be created or is not a folder; the message names the path.
    """
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise _location_error(folder, what, exc) from exc
    return folder


def _location_error(path: Path, what: str, exc: OSError) -> FileAccessError:
    """A FileAccessError that names the unusable path of one of textdrop's own files and what to do."""
    if isinstance(exc, FileExistsError | NotADirectoryError):
        reason = "a file is in the way (a folder is needed there)"
    elif isinstance(exc, IsADirectoryError):
        reason = "it is a folder (a file is needed there)"
    else:
        reason = exc.strerror or str(exc)
    return FileAccessError(
        f"Cannot use {file_label(path)} as textdrop's {what}: {reason}. Move away what is in the way "
        "or make the location writable, or set TEXTDROP_HOME to a writable folder for all of textdrop's "
        "files."
    )


def run_folders(args: argparse.Namespace) -> int:
    """``textdrop folders add|remove|list``: edit and show the ``[[folders]]`` of the config file."""
    if args.action in (None, "list"):  # ``textdrop folders`` alone lists them
        return _list_folders(load_settings(), as_json=args.json)
    if args.action == "add":
        for given in (args.path, args.out_dir):
            if given is not None and file_label(given) != str(given):
                raise UsageError(
                    f"{file_label(given)}: the config file (UTF-8 text) cannot hold a path that is not valid "
                    "UTF-8 or has control characters. Rename the folder, or watch it without the config "
                    "file: textdrop watch FOLDER"
                )
        options = {
            "path": args.path,
            "recursive": args.recursive,
            "polling": args.poll,
            "output": args.out_dir,
            "engine": args.engine,
            "template": args.template,
            **({"settle_seconds": args.settle} if args.settle is not None else {}),
            **({"patterns": tuple(args.patterns)} if args.patterns else {}),
        }
        try:
            folder = FolderOptions(**options)
        except ValueError as exc:
            raise UsageError(f"Cannot add {file_label(args.path)}: {exc}") from exc
        settings = load_settings()
        if folder.engine:
            resolve_engine_name(folder.engine)
        check_folders([*settings.folders, folder])
        edit_settings(
            lambda document: document.setdefault("folders", tomlkit.aot()).append(folder_table(folder))
        )
        note.print(f"Added {escape(file_label(folder.path))}. Run textdrop watch to start (or restart it).")
        return ExitCode.OK
    target = FolderOptions(path=args.path).path
    settings = load_settings()
    if not any(folder.path == target for folder in settings.folders):
        listed = ", ".join(file_label(folder.path) for folder in settings.folders) or "none"
        raise UsageError(f"{file_label(target)} is not a watched folder (watched: {listed}).")

    def drop(document: tomlkit.TOMLDocument) -> None:
        tables = document["folders"]
        keep = [t for t in tables if FolderOptions(path=Path(t["path"])).path != target]
        if keep:
            document["folders"] = tomlkit.aot()
            document["folders"].extend(keep)
        else:
            del document["folders"]

    edit_settings(drop)
    note.print(f"Removed {escape(file_label(target))}; its sidecars are left in place.")
    return ExitCode.OK


def _list_folders(settings: Settings, *, as_json: bool = False) -> int:
    if as_json:
        folders = [
            {**folder.model_dump(mode="json"), "path": file_label(folder.path)}
            | ({"output": file_label(folder.output)} if folder.output else {})
            for folder in settings.folders
        ]
        _print_json(folders)
        return ExitCode.OK
    if not settings.folders:
        err.print("No watched folders. Add one with: textdrop folders add FOLDER")
        return ExitCode.OK
    default_patterns = FolderOptions.model_fields["patterns"].default
    for folder in settings.folders:
        details = [
            "with sub-folders" if folder.recursive else "no sub-folders",
            "images and PDFs" if folder.patterns == default_patterns else " ".join(folder.patterns),
            f"settle {folder.settle_seconds:g} s",
            "polling" if folder.polling else "native events",
            f"sidecars in {file_label(folder.output)}" if folder.output else "sidecars beside files",
            f"engine {folder.engine or settings.engine}",
        ]
        out.print(escape(file_label(folder.path)))
        out.print(f"    {escape(' · '.join(details))}", style="dim")
    return ExitCode.OK


def run_status(args: argparse.Namespace) -> int:
    """``textdrop status`` (or ``watch --status``): whether a watcher runs, counts by status, the backlog
    and the last failures; with ``--json`` the same as one JSON object (``watcher.running``, ``files``
    counts, ``backlog``, ``failures``: ``path``, ``error``, ``permanent``, ``attempts``, ``updated`` and
    ``retry_at`` as UTC ISO 8601)."""
    lock = FileLock(watch_lock_path())
    running = False
    if watch_lock_path().exists():
        try:
            lock.acquire(timeout=0)
            lock.release()
        except Timeout:
            running = True
        except OSError as exc:
            raise _location_error(watch_lock_path(), "lock file", exc) from exc
    path = ledger_path()
    counts, failures = dict.fromkeys(Status, 0), []
    if path.exists():
        with Ledger(path) as ledger:
            counts = ledger.counts()
            failures = ledger.failures(limit=10)
    if args.json:
        _print_json(
            {
                "watcher": {"running": running},
                "files": {status.value: counts[status] for status in Status},
                "backlog": counts[Status.PENDING],
                "failures": [
                    {
                        "path": file_label(entry.path),
                        "error": entry.last_error,
                        "permanent": entry.permanent,
                        "attempts": entry.attempts,
                        "updated": _iso(entry.updated),
                        "retry_at": _iso(entry.retry_at) if entry.retry_at else None,
                    }
                    for entry in failures
                ],
            }
        )
        return ExitCode.OK
    out.print(f"Watcher: {'running' if running else 'not running'}")
    if not path.exists():
        out.print("No files processed yet (no ledger).")
        return ExitCode.OK
    out.print(
        f"Files: {counts[Status.DONE]} done, {counts[Status.PENDING]} pending, {counts[Status.FAILED]} failed"
    )
    out.print(f"Backlog: {counts[Status.PENDING]} file{'s' if counts[Status.PENDING] != 1 else ''} to read")
    if failures:
        out.print("Last failures:")
        for entry in failures:
            when = datetime.fromtimestamp(entry.updated).strftime("%Y-%m-%d %H:%M")
            retry = " (will retry)" if not entry.permanent else ""
            out.print(f"  {when}  {escape(file_label(entry.path))}: {escape(entry.last_error or '')}{retry}")
    return ExitCode.OK


def _iso(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _print_json(data: object) -> None:
    """``data`` as indented JSON on stdout, unstyled (rich would colour it on a terminal)."""
    sys.stdout.write(json.dumps(data, indent=2, ensure_ascii=False) + "\n")
    sys.stdout.flush()


__all__ = ["add_parsers", "run_folders", "run_status", "run_watch"]
