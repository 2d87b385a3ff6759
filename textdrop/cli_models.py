"""The model sub-commands of ``textdrop``: ``models list``, ``pull``, ``rm`` and ``info``.

They show the curated catalog (:mod:`textdrop.engine.models.catalog`: VLMs and the embedded engine's
language packs)
and download, locate and remove models through
:mod:`textdrop.engine.models.download`, which is imported only when one of them runs (it imports
huggingface_hub).
Models live in the standard Hugging Face cache, shared with other tools; :mod:`textdrop.cli` parses the
arguments and maps errors to exit codes.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import sys
from collections.abc import Callable
from types import ModuleType

from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)
from rich.prompt import Confirm
from rich.table import Table

from textdrop.engine.errors import ExitCode, ModelError
from textdrop.engine.models import catalog
from textdrop.engine.models.catalog import GgufFiles, LanguagePack, MlxFiles, ModelEntry, default_backend

log = logging.getLogger(__name__)

out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)

BACKEND_NAMES = {"llama": "llama.cpp", "mlx": "mlx-vlm"}


def add_parsers(commands: argparse._SubParsersAction) -> None:
    """Add ``models`` (with ``list``, ``pull``, ``rm``, ``info``) to the ``textdrop`` parser."""
    models = commands.add_parser(
        "models", help="list, download, inspect or remove OCR vision-language models"
    )
    actions = models.add_subparsers(dest="action", metavar="ACTION", required=True)
    listing = actions.add_parser(
        "list", help="the curated models: size, memory, licence, score, defaults, what is downloaded"
    )
    listing.add_argument("--json", action="store_true", help="print the catalogue as JSON, for scripts")
    backend_help = "llama (GGUF for llama.cpp) or mlx (mlx-vlm); default: mlx on Apple Silicon, else llama"
    pull = actions.add_parser("pull", help="download a model into the Hugging Face cache")
    pull.add_argument("model", metavar="ID", help="model id (see: textdrop models list)")
    pull.add_argument("-b", "--backend", choices=catalog.BACKENDS, help=backend_help)
    pull.add_argument("-y", "--yes", action="store_true", help="download without asking")
    remove = actions.add_parser("rm", help="delete a downloaded model from the Hugging Face cache")
    remove.add_argument("model", metavar="ID", help="model id")
    remove.add_argument(
        "-b", "--backend", choices=catalog.BACKENDS, help="only this backend's files (default: every one)"
    )
    info = actions.add_parser("info", help="everything about one model, with its local files when downloaded")
    info.add_argument("model", metavar="ID", help="model id")


def run_models(args: argparse.Namespace) -> int:
    """``textdrop models list|pull|rm|info``; returns the exit code.

    Raises:
        ModelError: unknown model id, no build for the backend, nothing to remove.
        DownloadError: the download failed (offline, no network, missing file, no disk space).
    """
    from textdrop.engine.models import download

    if args.action == "list":
        return _list_json(download) if args.json else _list(download)
    pack = catalog.find_pack(args.model)
    if pack is not None:
        return _pack_action(download, pack, args)
    entry = catalog.find_entry(args.model)
    if args.action == "pull":
        return _pull(download, entry, args.backend, args.yes)
    if args.action == "rm":
        return _remove(download, entry, args.backend)
    return _info(download, entry)


def _choose_backend(entry: ModelEntry, requested: str | None) -> str:
    if requested:
        if requested not in entry.backends:
            have = ", ".join(entry.backends) or "none"
            raise ModelError(
                f"{entry.id} has no {BACKEND_NAMES[requested]} build: {entry.why_not(requested)} "
                f"(backends: {have})."
            )
        return requested
    preferred = default_backend()
    if preferred in entry.backends:
        return preferred
    if not entry.backends:
        raise ModelError(f"{entry.id} has no downloadable build.")
    chosen = entry.backends[0]
    err.print(f"[dim]{escape(entry.id)} has no {BACKEND_NAMES[preferred]} build; using {chosen}.[/dim]")
    return chosen


def _pull(download: ModuleType, entry: ModelEntry, requested: str | None, yes: bool) -> int:
    backend = _choose_backend(entry, requested)
    files = entry.files_for(backend)
    assert files is not None
    if download.is_downloaded(entry, backend):
        local = download.locate(entry.id, backend)
        where = escape(str(local.path))
        err.print(f"[green]✓[/green] {escape(entry.id)} ({backend}) is already downloaded: {where}")
        return ExitCode.OK
    err.print(
        f"{escape(entry.title)} for {BACKEND_NAMES[backend]}: {escape(files.repo)}, about "
        f"{download.format_bytes(files.size_bytes)}, into {escape(str(download.cache_dir()))}"
    )
    if not entry.commercial_use:
        err.print(
            f"[yellow]![/yellow] Licence: {escape(entry.licence_name)}, which does not allow commercial use."
        )
    elif entry.licence not in catalog.DEFAULT_LICENCES:
        err.print(
            f"[yellow]![/yellow] Licence: {escape(entry.licence_name)} ({escape(entry.licence_source)})."
        )
    warning = download.memory_warning(entry, backend)
    if warning:
        err.print(f"[yellow]![/yellow] {escape(warning)}")
    return _transfer(download, entry, backend, yes)


def _transfer(download: ModuleType, entry: ModelEntry | LanguagePack, backend: str, yes: bool) -> int:
    """Ask (on a terminal, unless ``yes``), then download with a progress bar; ``backend`` is ``pack`` for a
    language pack."""
    interactive = not yes and sys.stdin.isatty() and err.is_terminal
    if interactive and not Confirm.ask("Download it?", console=err, default=True):
        err.print("Nothing downloaded.")
        return ExitCode.OK
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=err, transient=True, disable=not err.is_terminal) as bar:
        task = bar.add_task(escape(entry.id), total=None)

        def report(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        if isinstance(entry, LanguagePack):
            path = download.pull_pack(entry, progress=report)[0]
        else:
            path = download.pull(entry, backend, progress=report).path
    err.print(f"[green]✓[/green] {escape(entry.id)} ({backend}) ready: {escape(str(path))}")
    return ExitCode.OK


def _pack_action(download: ModuleType, pack: LanguagePack, args: argparse.Namespace) -> int:
    """``pull``, ``rm`` and ``info`` for a language pack of the embedded engine."""
    found = download.pack_files(pack)
    if args.action == "rm":
        freed = download.remove_pack(pack)
        err.print(f"Removed the {escape(pack.id)} language pack: {download.format_bytes(freed)} freed.")
        return ExitCode.OK
    if args.action == "info":
        grid = Table.grid(padding=(0, 2))
        grid.add_column(style="bold")
        grid.add_column()
        rows = [
            ("id", pack.id),
            ("title", f"{pack.title} language pack for the embedded engine"),
            ("script", pack.script),
            ("languages", ", ".join(pack.languages)),
            ("licence", pack.licence),
            ("source", pack.source),
            ("files", f"{pack.repo} (revision {pack.revision}): {', '.join(pack.files)}"),
            ("size", f"about {download.format_bytes(pack.size_bytes)}"),
            ("local", str(found[0]) if found else f"not downloaded (textdrop models pull {pack.id})"),
        ]
        for key, value in rows:
            grid.add_row(escape(key), escape(value))
        out.print(grid)
        return ExitCode.OK
    if found is not None:
        err.print(
            f"[green]✓[/green] the {escape(pack.id)} language pack is already downloaded: "
            f"{escape(str(found[0]))}"
        )
        return ExitCode.OK
    err.print(
        f"{escape(pack.title)} language pack: {escape(pack.repo)}, "
        f"about {download.format_bytes(pack.size_bytes)}, "
        f"licence {escape(pack.licence)}, into {escape(str(download.cache_dir()))}"
    )
    return _transfer(download, pack, "pack", args.yes)


def _remove(download: ModuleType, entry: ModelEntry, requested: str | None) -> int:
    backends = [_choose_backend(entry, requested)] if requested else list(entry.backends)
    removed = 0
    for backend in backends:
        try:
            freed = download.remove(entry, backend)
        except ModelError:
            if requested:
                raise
            continue
        removed += 1
        err.print(f"Removed {escape(entry.id)} ({backend}): {download.format_bytes(freed)} freed.")
    if not removed:
        raise ModelError(f"{entry.id} is not downloaded: nothing to remove.")
    return ExitCode.OK


def _downloaded(download: ModuleType, entry: ModelEntry) -> list[str]:
    return [backend for backend in entry.backends if download.is_downloaded(entry, backend)]


def _scores(entry: ModelEntry) -> str:
    return " · ".join(score.label for score in entry.scores) or "-"


def _per_backend(entry: ModelEntry, size: Callable[[GgufFiles | MlxFiles], int], download: ModuleType) -> str:
    cells = []
    for backend in entry.backends:
        files = entry.files_for(backend)
        assert files is not None
        cells.append(f"{backend} {download.format_bytes(size(files))}")
    return " · ".join(cells)


def _list_json(download: ModuleType) -> int:
    """``models list --json``: one object per catalogue entry, sizes in bytes, on standard output."""
    models = [
        {
            "id": entry.id,
            "title": entry.title,
            "family": entry.family,
            "params": entry.params,
            "licence": entry.licence,
            "licence_label": entry.licence_name,
            "licence_source": entry.licence_source,
            "commercial_use": entry.commercial_use,
            "defaults": list(entry.defaults),
            "builds": {
                backend: {
                    "repo": files.repo,
                    "size_bytes": files.size_bytes,
                    "memory_bytes": files.memory_need,
                    "memory_measured": files.memory_bytes is not None,
                    "source": files.source,
                }
                for backend in entry.backends
                if (files := entry.files_for(backend)) is not None
            },
            "not_offered": {
                backend: reason for backend in catalog.BACKENDS if (reason := entry.why_not(backend))
            },
            "scores": [dataclasses.asdict(score) for score in entry.scores],
            "downloaded": _downloaded(download, entry),
        }
        for entry in catalog.CATALOG
    ]
    print(json.dumps({"cache": str(download.cache_dir()), "models": models}, indent=2, ensure_ascii=False))
    return ExitCode.OK


def _list(download: ModuleType) -> int:
    table = Table(box=None, pad_edge=False, header_style="bold")
    for column in ("ID", "Size", "Memory", "Licence", "Commercial use", "Score", "Downloaded", "Default"):
        table.add_column(column)
    not_offered = []
    for entry in catalog.CATALOG:
        downloaded = ", ".join(_downloaded(download, entry)) or "-"
        table.add_row(
            escape(entry.id),
            escape(_per_backend(entry, lambda files: files.size_bytes, download)),
            escape(_per_backend(entry, lambda files: files.memory_need, download)),
            escape(entry.licence_name),
            "yes" if entry.commercial_use else "no",
            escape(_scores(entry)),
            escape(downloaded),
            escape(", ".join(entry.defaults) or "-"),
        )
        not_offered += [
            f"  {entry.id} on {BACKEND_NAMES[backend]}: {reason}"
            for backend in catalog.BACKENDS
            if (reason := entry.why_not(backend))
        ]
    out.print(table)
    if not_offered:
        out.print(escape("Not offered:\n" + "\n".join(not_offered)))
    out.print(
        escape(
            "Memory: what the loaded model needs (published measurement, else download size × "
            f"{catalog.MEMORY_FACTOR}). Scores are published ones, not comparable across benchmarks; their "
            "sources: textdrop models info ID."
        ),
        style="dim",
    )
    packs = Table(box=None, pad_edge=False, header_style="bold", title="Language packs (embedded engine)")
    for column in ("ID", "Script", "Languages", "Size", "Licence", "Downloaded"):
        packs.add_column(column)
    for pack in catalog.LANGUAGE_PACKS:
        packs.add_row(
            escape(pack.id),
            escape(pack.script),
            escape(" ".join(pack.languages)),
            escape(download.format_bytes(pack.size_bytes)),
            escape(pack.licence),
            "yes" if download.pack_files(pack) is not None else "-",
        )
    out.print(packs)
    err.print(
        f"[dim]Models are kept in {escape(str(download.cache_dir()))} (the Hugging Face cache, shared with "
        "other tools). Download one with: textdrop models pull ID[/dim]"
    )
    return ExitCode.OK


def _info(download: ModuleType, entry: ModelEntry) -> int:
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold")
    grid.add_column()
    licence = (
        entry.licence if entry.licence_name == entry.licence else f"{entry.licence_name} ({entry.licence})"
    )
    rows = [
        ("id", entry.id),
        ("title", entry.title),
        ("family", entry.family),
        ("parameters", entry.params),
        ("licence", f"{licence}, commercial use: {'yes' if entry.commercial_use else 'no'}"),
        ("  source", entry.licence_source or "-"),
        ("page size", f"{entry.page_size} px (longest side)"),
        ("defaults", ", ".join(entry.defaults) or "-"),
        ("source", entry.source or "-"),
        ("notes", entry.notes or "-"),
    ]
    for score in entry.scores:
        setup = f"; {score.setup}" if score.setup else ""
        rows.append(("score", f"{score.label} (measured by the {score.by}{setup})"))
        rows.append(("  source", score.source))
    if not entry.scores:
        rows.append(("score", "none published on olmOCR-Bench or OmniDocBench"))
    for backend in catalog.BACKENDS:
        files = entry.files_for(backend)
        name = BACKEND_NAMES[backend]
        if files is None:
            rows.append((name, f"not offered: {entry.why_not(backend)}"))
            continue
        rows.append((name, f"{files.repo} (revision {files.revision})"))
        if isinstance(files, catalog.GgufFiles):
            rows.append(("  model", files.model))
            rows.append(("  mmproj", files.mmproj))
        else:
            rows.append(("  files", " ".join(files.allow_patterns)))
        rows.append(("  size", f"about {download.format_bytes(files.size_bytes)}"))
        measured = (
            "measured" if files.memory_bytes is not None else f"estimated: size × {catalog.MEMORY_FACTOR}"
        )
        rows.append(("  memory", f"about {download.format_bytes(files.memory_need)} ({measured})"))
        rows.append(("  source", files.source or "-"))
        if download.is_downloaded(entry, backend):
            local = download.locate(entry.id, backend)
            rows.append(("  local", str(local.path)))
            if local.mmproj is not None:
                rows.append(("", str(local.mmproj)))
        else:
            rows.append(("  local", f"not downloaded (textdrop models pull {entry.id} --backend {backend})"))
    for key, value in rows:
        grid.add_row(escape(key), escape(value))
    out.print(grid)
    return ExitCode.OK


__all__ = ["add_parsers", "default_backend", "run_models"]
