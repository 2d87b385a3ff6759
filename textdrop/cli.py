"""The ``textdrop`` command.

``run()`` parses arguments, runs one sub-command and returns an :class:`ExitCode`; every
:class:`TextdropError` becomes one line on stderr and its exit code, with a traceback only with ``-v``.
"""

from __future__ import annotations

import argparse
import contextlib
import glob
import json
import logging
import os
import signal
import sys
import threading
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from textdrop import __version__, cli_models, cli_serve, cli_watch
from textdrop.engine.documents.sidecar import FORMATS, find_up_to_date, write_sidecar
from textdrop.engine.documents.sources import SUPPORTED_SUFFIXES, file_label, file_version, sha256_file
from textdrop.engine.errors import (
    ExitCode,
    FileAccessError,
    LimitExceededError,
    ModelError,
    TextdropError,
    UsageError,
)
from textdrop.engine.registry import RecognizeOptions, split_spec
from textdrop.engine.result import OcrResult

if TYPE_CHECKING:
    from textdrop.engine.jobs import Job, JobQueue

log = logging.getLogger(__name__)

err = Console(stderr=True, highlight=False, soft_wrap=True)
note = Console(stderr=True, highlight=False, soft_wrap=True)
"""Progress and success lines; silenced by ``-q`` (errors go to :data:`err`)."""

STDIN = "-"
"""The ``ocr`` argument that reads one image or PDF from standard input."""


class _Parser(argparse.ArgumentParser):
    """An argument parser whose every (sub-)command takes ``-v`` and ``-q``, before or after its name.

    Sub-parsers are made of the parser's own class, so each gets the two options; their default is
    ``SUPPRESS`` so that a sub-command that does not see them keeps what the main command parsed.
    """

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.add_argument(
            "-v", "--verbose", action="store_true", default=argparse.SUPPRESS, help="log details, tracebacks"
        )
        self.add_argument(
            "-q", "--quiet", action="store_true", default=argparse.SUPPRESS, help="print errors only"
        )


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="textdrop", description="Local OCR: images and PDFs to Markdown, on your machine.")
    parser.add_argument("--version", action="version", version=f"textdrop {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    ocr = commands.add_parser("ocr", help="recognise images and PDFs, write Markdown sidecars")
    ocr.add_argument(
        "paths", nargs="+", metavar="PATH", help="files, folders or glob patterns; '-' reads standard input"
    )
    ocr.add_argument("-r", "--recursive", action="store_true", help="descend into sub-folders")
    ocr.add_argument("-o", "--out-dir", type=Path, help="write sidecars here instead of beside each file")
    ocr.add_argument("--stdout", action="store_true", help="print the result instead of writing sidecars")
    ocr.add_argument("-f", "--format", choices=FORMATS, default="md", help="output format (default: md)")
    ocr.add_argument("-e", "--engine", help="engine name, or 'auto' (default: from the config file)")
    ocr.add_argument("--force", action="store_true", help="recognise even files whose sidecar is up to date")
    ocr.add_argument("--dpi", type=int, help="PDF render resolution in dots per inch (default: 200)")
    ocr.add_argument(
        "--box", type=_box, metavar="X0,Y0,X1,Y1", help="read only this region of each page, in pixels"
    )
    ocr.add_argument(
        "-l",
        "--lang",
        help="languages of the pages, e.g. ru,en (ISO 639-1 codes or pack ids; see: textdrop models list)",
    )
    ocr.add_argument(
        "--pdf-text",
        choices=("auto", "layer", "ocr"),
        help="PDF pages: use a usable text layer, else OCR (auto, the default); text layers only; always OCR",
    )
    ocr.add_argument(
        "--copy", action="store_true", help="also put the text on the clipboard (kept after exit)"
    )
    ocr.add_argument(
        "--layout",
        choices=("on", "off"),
        help="embedded engine: read the page through a layout model's regions, or by its lines alone "
        "(default: on)",
    )
    vlm = ocr.add_argument_group("VLM engines (llama, mlx, openai)")
    vlm.add_argument("-m", "--model", help="catalogue id, local GGUF/MLX path, or the server's model name")
    vlm.add_argument(
        "--mode", choices=("markdown", "text", "json"), help="what to produce (default: markdown)"
    )
    vlm.add_argument("--prompt", help="a free prompt instead of the model's own")
    vlm.add_argument("--fields", help="JSON mode: comma-separated keys to extract, e.g. total,date,vendor")
    vlm.add_argument("--schema", type=Path, help="JSON mode: a JSON Schema file the answer must satisfy")
    vlm.add_argument("--max-tokens", type=int, help="output-token budget per page (default: the context)")
    vlm.add_argument(
        "--no-fallback", action="store_true", help="fail a page the VLM cannot read instead of using rapid"
    )

    bench = commands.add_parser("bench", help="measure accuracy, speed and memory on scans with ground truth")
    bench.add_argument("directory", type=Path, help="folder of images with <stem>.gt.txt ground truth")
    bench.add_argument("-e", "--engine", default="rapid", help="engine to measure (default: rapid)")
    bench.add_argument(
        "--compare-raw", action="store_true", help="also run raw RapidOCR, row-joined, on the same images"
    )
    bench.add_argument("--json", action="store_true", help="print the figures as JSON")

    tray = commands.add_parser("tray", help="run the tray app (drop window, capture hotkey, watched folders)")
    tray.add_argument("--no-watch", action="store_true", help="do not watch the configured folders")
    commands.add_parser("capture", help="drag a screen region; its text goes to the clipboard")

    doctor = commands.add_parser("doctor", help="show engines, accelerators, models and what 'auto' picks")
    doctor.add_argument("--json", action="store_true", help="print the report as JSON")

    cli_watch.add_parsers(commands)
    cli_models.add_parsers(commands)
    cli_serve.add_parser(commands)
    return parser


def run(argv: list[str] | None = None) -> int:
    """Entry point of the ``textdrop`` console script; returns the process exit code."""
    parser = _parser()
    args = parser.parse_args(argv)
    args.verbose, args.quiet = getattr(args, "verbose", False), getattr(args, "quiet", False)
    if args.verbose and args.quiet:
        parser.error("-v and -q cannot be used together")
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.ERROR if args.quiet else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    note.quiet = cli_watch.note.quiet = args.quiet
    if args.command is None:
        if _has_display():
            args.command, args.no_watch = "tray", False
        else:
            parser.print_help()
            return ExitCode.USAGE
    try:
        if args.command == "ocr":
            with _sigterm_unwinds():
                return _ocr(args)
        if args.command == "watch":
            return cli_watch.run_watch(args)
        if args.command == "folders":
            return cli_watch.run_folders(args)
        if args.command == "status":
            return cli_watch.run_status(args)
        if args.command == "models":
            return cli_models.run_models(args)
        if args.command == "serve":
            return cli_serve.run_serve(args)
        if args.command in ("tray", "capture"):
            try:
                from textdrop.desktop.app import run_capture, run_tray
            except ImportError as exc:
                raise UsageError(
                    f"The tray app needs Qt and pynput ({exc}). "
                    "Install them with: pip install 'textdrop[desktop]'"
                ) from exc
            return run_tray(watch=not args.no_watch) if args.command == "tray" else run_capture()
        if args.command == "doctor":
            from textdrop.doctor import run_doctor

            return run_doctor(as_json=args.json)
        from textdrop.bench import run_bench

        return run_bench(args.directory, engine=args.engine, compare_raw=args.compare_raw, as_json=args.json)
    except TextdropError as exc:
        _fail(None, exc, args.verbose)
        return exc.exit_code
    except _Terminated:
        err.print("Terminated.")
        return ExitCode.TERMINATED
    except KeyboardInterrupt:
        err.print("Interrupted.")
        return ExitCode.INTERRUPTED
    except OSError as exc:  # a path textdrop needs is unusable in a way no check foresaw: name it
        where = f" {file_label(exc.filename)}" if exc.filename else ""
        error = FileAccessError(
            f"Cannot use{where}: {exc.strerror or exc}. Check that it exists and is writable "
            "(TEXTDROP_HOME moves all of textdrop's files)."
        )
        _fail(None, error, args.verbose)
        return error.exit_code


class _Terminated(KeyboardInterrupt):
    """Raised in the main thread by SIGTERM, so a command unwinds as it does for Ctrl+C: the sidecar being
    written is rolled back (its temp file removed), queued jobs are cancelled, and the exit code is 143."""


def _terminate(signum: int, frame: object) -> None:
    raise _Terminated


@contextlib.contextmanager
def _sigterm_unwinds() -> Iterator[None]:
    """Make SIGTERM raise :class:`_Terminated` in the main thread for the duration (elsewhere: nothing)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, _terminate)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _has_display() -> bool:
    """True where the tray app can show itself: a graphical session, and PySide6 installed."""
    from importlib.util import find_spec

    graphical = sys.platform in ("darwin", "win32") or bool(
        os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")
    )
    return graphical and find_spec("PySide6") is not None


def _fail(path: Path | None, exc: BaseException, verbose: bool) -> None:
    message = str(exc) if isinstance(exc, TextdropError) else f"unexpected error: {exc!r}"
    named = path is None or file_label(path) in message or str(path) in message
    prefix = "" if named else f"{escape(file_label(path))}: "
    err.print(f"[red]✗[/red] {prefix}{escape(message)}")
    if verbose:
        err.print_exception()


def expand_inputs(patterns: list[str], recursive: bool) -> list[Path | str | TextdropError]:
    """Files named by the arguments, in order, without duplicates.

    A file is taken whatever its suffix (its content decides); a folder yields its images and PDFs
    (sub-folders only with ``recursive``; symlinked folders are not followed, so a symlink loop cannot
    recurse); a pattern with ``*``, ``?`` or ``[`` is expanded as a glob (``**`` with ``recursive``).
    An argument that matches nothing becomes a :class:`FileAccessError` in the list, in its place;
    ``-`` stays :data:`STDIN` (a second one is a :class:`UsageError`).
    """

    found: list[Path | str | TextdropError] = []
    seen: set[str] = set()

    def add(path: Path) -> bool:
        real = os.path.realpath(path)  # one file reached through symlinked folders counts once
        if real in seen:
            return False
        seen.add(real)
        found.append(path)
        return True

    for pattern in patterns:
        if pattern == STDIN:
            if STDIN in found:
                found.append(UsageError("'-' (standard input) can be given once."))
            else:
                found.append(STDIN)
            continue
        path = Path(pattern)
        if path.is_dir():
            walk = os.walk(path) if recursive else [(str(path), [], os.listdir(path))]
            added = 0
            for folder, dirs, files in walk:
                dirs.sort()
                for name in sorted(files):
                    child = Path(folder) / name
                    if child.suffix.lower() in SUPPORTED_SUFFIXES and child.is_file():
                        added += add(child)
            if not added:
                where = " (add --recursive for sub-folders)" if not recursive else ""
                message = f"{file_label(pattern)} is a folder with no images or PDFs in it{where}."
                found.append(FileAccessError(message))
        elif os.path.lexists(path):
            add(path)
        elif glob.has_magic(pattern):
            matches = sorted(glob.glob(pattern, recursive=recursive))
            for match in matches:
                if Path(match).is_file():
                    add(Path(match))
            if not matches:
                found.append(FileAccessError(f"{file_label(pattern)}: no file matches this pattern."))
        else:
            found.append(FileAccessError(f"{file_label(pattern)}: no such file or folder."))
    return found


@dataclass
class _Tally:
    written: int = 0
    skipped: int = 0
    failed: int = 0
    fallback_files: int = 0
    fallback_pages: int = 0
    exit_code: ExitCode = ExitCode.OK

    def fail(self, code: ExitCode) -> None:
        self.failed += 1
        if self.exit_code == ExitCode.OK:
            self.exit_code = code


OCR_AHEAD = 2
"""Files submitted to the job queue ahead of the one whose result is awaited: the next file is decoded
while this one's sidecar is written, and results never pile up in memory."""


def _ocr(args: argparse.Namespace) -> int:
    """``textdrop ocr``: every input in argument order, one line each, the first failure's exit code (or
    12, :attr:`ExitCode.FALLBACK`, when all were read but the embedded engine read some pages for the VLM).

    Files are submitted up to :data:`OCR_AHEAD` ahead, but every outcome (a sidecar, ``up to date``, an
    error found while expanding the arguments or hashing a file) is reported in the order of the
    arguments, so the lines and the exit code follow that order. A sidecar is written only if its source
    is still the file that was read (:func:`file_version` before and after). ``-`` reads standard input and
    prints its result.
    """
    from textdrop.engine.jobs import Job, JobQueue
    from textdrop.settings import load_settings

    if args.stdout and args.format == "pdf":
        raise UsageError(
            "--stdout prints text, not a PDF: leave out --stdout, or use --format md, txt or json."
        )
    settings = load_settings()
    limits = settings.sources
    if args.dpi is not None:
        limits = limits.model_copy(update={"pdf_dpi": args.dpi})
    template = settings.sidecar.template
    options = _recognize_options(args, settings.recognize)
    inputs = expand_inputs(args.paths, args.recursive)
    queue = JobQueue(
        engine_spec(args.engine or settings.engine, args.model),
        options=options,
        limits=limits,
        preload=False,
        backends=settings.backends(),
    )
    _check_languages(options.languages, queue.engine_name())
    tally = _Tally()
    waiting: deque[_Pending] = deque()
    copied: list[str] = []

    with (
        Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=note,
            transient=True,
            disable=len(inputs) <= 1 or not note.is_terminal,
        ) as progress,
        queue,
    ):
        task = progress.add_task("Recognising", total=len(inputs))
        for item in inputs:
            if isinstance(item, TextdropError):
                waiting.append(_Pending(None, item))
            elif item == STDIN:
                try:
                    waiting.append(_Pending(None, queue.submit(_read_stdin(limits.max_file_mb))))
                except TextdropError as exc:
                    waiting.append(_Pending(None, exc))
            else:
                progress.update(task, description=escape(file_label(item.name)))
                waiting.append(_submit(args, queue, item, template))
            while len(waiting) > OCR_AHEAD or (waiting and not isinstance(waiting[0].outcome, Job)):
                _finish(args, waiting.popleft(), tally, template, copied)
                progress.advance(task)
        while waiting:
            _finish(args, waiting.popleft(), tally, template, copied)
            progress.advance(task)
    if copied:
        from textdrop.desktop.clipboard import copy_text

        try:
            handler = copy_text("\n\n".join(copied))
            note.print(f"Copied to the clipboard ({handler}).")
        except TextdropError as exc:
            _fail(None, exc, args.verbose)
            tally.fail(exc.exit_code)
    if len(inputs) > 1 or tally.failed or tally.fallback_files:
        verb = "printed" if args.stdout else "written"
        summary = f"{tally.written} {verb}, {tally.skipped} up to date, {tally.failed} failed"
        if tally.fallback_files:
            summary += (
                f", {tally.fallback_files} with {tally.fallback_pages} page(s) read by the embedded engine "
                "instead of the VLM"
            )
        note.print(summary + ".")
    if tally.exit_code == ExitCode.OK and tally.fallback_files:
        return ExitCode.FALLBACK
    return tally.exit_code


@dataclass
class _Pending:
    """One input of ``textdrop ocr`` waiting to be reported, in argument order.

    Attributes:
        path: the file, or ``None`` for standard input and for an argument that matched nothing.
        outcome: the job reading it; the error found before it could be submitted; or the up-to-date
            sidecar that makes reading it unnecessary.
        version: :func:`file_version` of the file when it was submitted.
    """

    path: Path | None
    outcome: Job | TextdropError | Path
    version: tuple[int, int, int, int] | None = None


def _submit(args: argparse.Namespace, queue: JobQueue, item: Path, template: str) -> _Pending:
    """Submit one file, or say why it need not or cannot be read."""
    try:
        version = file_version(item)
        if not args.force and not args.stdout:
            digest = sha256_file(item)
            layout = queue.options.layout
            current = find_up_to_date(
                item, digest, args.format, out_dir=args.out_dir, template=template, layout=layout
            )
            if current is not None:
                return _Pending(item, current)
    except TextdropError as exc:
        return _Pending(item, exc)
    except OSError as exc:
        return _Pending(item, FileAccessError(f"cannot read the file: {exc.strerror or exc}."))
    return _Pending(item, queue.submit(item), version)


def _finish(
    args: argparse.Namespace, pending: _Pending, tally: _Tally, template: str, copied: list[str]
) -> None:
    """Report one input: print its result or write its sidecar, or print why not; count it."""
    item, outcome = pending.path, pending.outcome
    try:
        if isinstance(outcome, TextdropError):
            raise outcome
        if isinstance(outcome, Path):
            tally.skipped += 1
            label = f"{file_label(item or '')}: up to date ({file_label(outcome)})"
            note.print(f"[dim]= {escape(label)}[/dim]")
            return
        result = outcome.result()
        if args.stdout or item is None:
            sys.stdout.write(_stdout_text(result, args.format))
            sys.stdout.flush()
        else:
            _check_unchanged(item, pending.version)
            target = write_sidecar(result, item, args.format, out_dir=args.out_dir, template=template)
            pages = len(result.pages)
            note.print(
                f"[green]✓[/green] {escape(file_label(item))} → {escape(file_label(target))} "
                f"({pages} page{'s' if pages != 1 else ''}, {result.seconds:.1f} s)"
            )
        for warning in result.warnings:
            note.print(f"[yellow]![/yellow] {escape(file_label(item or STDIN))}: {escape(warning)}")
        for line in result.fallback_notes():
            note.print(f"[yellow]![/yellow] {escape(file_label(item or STDIN))}: {escape(line)}")
        if result.fallbacks:
            tally.fallback_files += 1
            tally.fallback_pages += len(result.fallbacks)
        tally.written += 1
        if args.copy:
            copied.append(result.markdown.strip())
    except TextdropError as exc:
        _fail(item, exc, args.verbose)
        tally.fail(exc.exit_code)
    except Exception as exc:  # one bad file never stops the batch
        log.debug("unexpected error on %s", file_label(item or STDIN), exc_info=True)
        _fail(item, exc, args.verbose)
        tally.fail(ExitCode.OTHER_ERROR)


def _check_unchanged(item: Path, version: tuple[int, int, int, int] | None) -> None:
    """Raise FileAccessError when the file was deleted, replaced or written to since it was submitted."""
    try:
        now = file_version(item)
    except OSError:
        now = None
    if now is None:
        raise FileAccessError(f"{file_label(item)} was deleted while it was read; no sidecar written.")
    if now != version:
        raise FileAccessError(
            f"{file_label(item)} was replaced or changed while it was read; no sidecar written for content "
            "that is gone. Run textdrop again once it is complete."
        )


def _read_stdin(max_mb: float) -> bytes:
    """The bytes of standard input, at most ``max_mb`` MiB (one more byte tells the limit was passed).

    Raises:
        UsageError: standard input is a terminal (nothing was piped in).
        LimitExceededError: more than ``max_mb`` MiB.
    """
    if sys.stdin is None or sys.stdin.isatty():
        raise UsageError(
            "'-' reads an image from standard input: pipe one in, e.g. textdrop ocr - < scan.png"
        )
    limit = int(max_mb * 1024 * 1024)
    data = sys.stdin.buffer.read(limit + 1)
    if len(data) > limit:
        raise LimitExceededError(
            f"Standard input is over the {max_mb:g} MiB limit; raise the max_file_mb setting to read it."
        )
    return data


def _check_languages(languages: tuple[str, ...], engine: str) -> None:
    """Refuse, before any file is read, a language nothing reads, or (embedded engine) a pack not installed.

    Raises:
        ModelError: the message names the language, or the command that installs its pack.
    """
    from textdrop.engine.models.catalog import missing_pack_message, packs_for

    _, packs = packs_for(languages)
    if split_spec(engine)[0] != "rapid" or not packs:
        return
    from textdrop.engine.models.download import pack_files

    for pack in packs:
        if pack_files(pack) is None:
            raise ModelError(missing_pack_message(pack, languages))


def engine_spec(engine: str, model: str | None) -> str:
    """The engine spec for ``--engine`` and ``--model``: ``llama`` + ``granite-docling-258m`` → ``llama:…``.

    Raises:
        UsageError: ``--model`` with ``auto`` or no VLM engine named.
    """
    if model is None:
        return engine
    name = split_spec(engine)[0]
    if name in ("auto", "rapid"):
        raise UsageError("--model needs a VLM engine: add --engine llama, --engine mlx or --engine openai.")
    return f"{name}:{model}"


def _recognize_options(args: argparse.Namespace, base: RecognizeOptions) -> RecognizeOptions:
    """The config file's recognition options with the command line's VLM options on top."""
    update: dict[str, object] = {}
    if args.mode:
        update["mode"] = args.mode
    if args.prompt:
        update["prompt"] = args.prompt
    if args.fields:
        update["fields"] = tuple(f.strip() for f in args.fields.split(",") if f.strip())
    if args.max_tokens:
        update["max_tokens"] = args.max_tokens
    if args.no_fallback:
        update["fallback"] = False
    if args.box:
        update["box"] = args.box
    if args.pdf_text:
        update["pdf_text"] = args.pdf_text
    if args.lang:
        update["languages"] = tuple(code.strip() for code in args.lang.split(",") if code.strip())
    if args.schema:
        update["json_schema"] = _read_schema(args.schema)
    if args.layout:
        update["layout"] = args.layout == "on"
    if (update.get("fields") or update.get("json_schema")) and (args.mode or base.mode) != "json":
        update["mode"] = "json"  # fields and a schema only make sense for extraction
    return base.model_validate({**base.model_dump(), **update})


def _box(text: str) -> tuple[int, int, int, int]:
    """``--box``'s value, checked by :class:`RecognizeOptions` (argparse prints the message)."""
    from pydantic import ValidationError

    try:
        return RecognizeOptions(box=text).box  # type: ignore[arg-type,return-value]
    except ValidationError as exc:
        raise argparse.ArgumentTypeError(exc.errors()[0]["msg"].removeprefix("Value error, ")) from None


def _read_schema(path: Path) -> dict:
    """A JSON Schema file's content, checked to be a valid schema.

    Raises:
        UsageError: the file is missing, not JSON, or not a valid JSON Schema.
    """
    import jsonschema

    try:
        schema = json.loads(path.read_text(encoding="utf-8"))
        jsonschema.Draft202012Validator.check_schema(schema)
    except OSError as exc:
        raise UsageError(f"Cannot read the schema {file_label(path)}: {exc.strerror or exc}.") from exc
    except ValueError as exc:
        raise UsageError(f"The schema {file_label(path)} is not JSON: {exc}.") from exc
    except jsonschema.SchemaError as exc:
        raise UsageError(f"The schema {file_label(path)} is not a valid JSON Schema: {exc.message}.") from exc
    return schema


def _stdout_text(result: OcrResult, fmt: str) -> str:
    """Markdown without front matter, plain text, or the JSON document, for ``--stdout``."""
    if fmt == "md":
        return result.markdown
    if fmt == "json":
        return json.dumps(result.to_dict(), indent=2, ensure_ascii=False) + "\n"
    return result.text


def main() -> None:
    """``python -m textdrop``."""
    sys.exit(run())
