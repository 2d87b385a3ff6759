"""Sidecar files: naming, rendering (Markdown with front matter, plain text, JSON) and atomic writing.

``scan_001.jpg`` gets ``scan_001.jpg.md`` by default; the name comes from a template
(:class:`SidecarOptions`). A file at the target path that textdrop did not write for a source of the
same name is never overwritten: the sidecar then gets a numbered name (``scan_001.jpg.1.md``,
``scan_001.jpg.2.md``, …). Writes go to a temp file in the target folder that is renamed into place, so
a reader never sees a half-written sidecar and no temp file is left behind.
"""

from __future__ import annotations

import codecs
import json
import logging
import os
import re
import string
import sys
import tempfile
import threading
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import psutil
import yaml
from pydantic import BaseModel, ConfigDict, Field, field_validator

from textdrop import __version__
from textdrop.engine.documents.sources import file_label
from textdrop.engine.errors import OutputError

if TYPE_CHECKING:
    from textdrop.engine.result import OcrResult

log = logging.getLogger(__name__)

FORMATS: tuple[str, ...] = ("md", "txt", "json", "pdf")
"""Sidecar formats, named by their file extension; ``pdf`` is the searchable PDF (:mod:`.pdfout`)."""

DEFAULT_TEMPLATE = "{name}.{ext}"

MAX_CANDIDATES = 1000
"""How many names (the template's, then numbered variants) are tried before giving up."""

FRONT_MATTER_LIMIT = 64 * 1024
"""Bytes read from the start of a Markdown file to find textdrop's front matter."""

_PLACEHOLDERS = frozenset({"name", "stem", "ext"})
_FORMATTER = string.Formatter()
_FRONT_MATTER = re.compile(r"\A---[ \t]*\r?\n(.*?)^---[ \t]*\r?$", re.DOTALL | re.MULTILINE)
_SUFFIX_FORMATS = {".md": "md", ".json": "json", ".pdf": "pdf"}
TEMP_PREFIX = ".textdrop-"
"""Temp files are named ``.textdrop-<pid>-<random>.tmp``: the writer's process id tells a stale one."""
_TEMP_NAME = re.compile(r"\A\.textdrop-(\d+)-[^/\\]*\.tmp\Z")
_YAML_WIDTH = 10_000
"""Line width for the front matter, wide enough that long file names stay on one line."""
_umask_lock = threading.Lock()


class SidecarOptions(BaseModel):
    """How sidecars are named."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    template: str = Field(
        DEFAULT_TEMPLATE,
        description=(
            "File name of a sidecar. Placeholders: {name} is the source's file name with its suffix "
            "(scan.jpg), {stem} the name without it (scan), {ext} the format's extension (md, txt or "
            "json). Must contain {ext} and no path separator. When the name is taken by another file, "
            "a number goes before the extension: scan.jpg.1.md."
        ),
    )

    @field_validator("template")
    @classmethod
    def _valid_template(cls, value: str) -> str:
        _check_template(value)
        return value


def render(result: OcrResult, fmt: str = "md", *, source_folder: str | None = None) -> str:
    """Render a result as the content of a sidecar.

    Args:
        result: the recognised document.
        fmt: ``"md"``: YAML front matter (``textdrop`` version, ``source``, ``sha256``, ``engine``,
            ``model``, ``pages`` (count), ``created`` (UTC, ISO 8601 to the second, ``Z`` suffix),
            ``seconds`` (rounded to 0.01), ``layout`` (``regions`` or ``off``, for line-based engines:
            how the reading order was found), ``engines`` (page numbers by the engine that made them)
            when some page was not made by ``engine``, ``fallback`` (a list of ``page``, ``engine``,
            ``why``, one item per page) when a VLM failed on pages, or could not be loaded, and the
            embedded engine read them, ``truncated`` (page numbers) when a VLM's answer
            reached the page's output budget, ``pdf_text`` (page numbers by text source, ``layer`` or
            ``ocr``) for a PDF, ``warnings`` when there are any, and ``source_folder`` when given) between
            ``---`` lines, a blank line, then the Markdown.
            ``"txt"``: the plain text only, pages separated by form feeds. ``"json"``: the whole result,
            boxes included, under a ``textdrop`` object holding ``version``, ``created`` and
            ``source_folder`` when given.
        source_folder: the source's folder, for a sidecar written to an output folder (see
            :func:`sidecar_path`); ``None`` leaves it out.

    Returns:
        The text to write, ending in exactly one newline.

    Raises:
        ValueError: ``fmt`` is not one of :data:`FORMATS`, or is ``pdf`` (a binary file: see
            :func:`write_sidecar`).
    """
    _check_format(fmt)
    if fmt == "pdf":
        raise ValueError("a searchable PDF is not text; write it with write_sidecar(result, source, 'pdf')")
    created = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    if fmt == "json":
        stamp = {"version": __version__, "created": created}
        if source_folder is not None:
            stamp["source_folder"] = source_folder
        data = {"textdrop": stamp, **result.to_dict()}
        return json.dumps(data, indent=2, ensure_ascii=False) + "\n"
    if fmt == "txt":
        return result.text.rstrip() + "\n"
    front_matter = {
        "textdrop": __version__,
        "source": result.source,
        "sha256": result.sha256,
        "engine": result.engine,
        "model": result.model,
        "pages": len(result.pages),
        "created": created,
        "seconds": round(result.seconds, 2),
    }
    layout = next((page.layout for page in result.pages if page.layout), None)
    if layout:
        front_matter["layout"] = layout
    engines: dict[str, list[int]] = {}
    for page in result.pages:
        if page.engine is not None:
            engines.setdefault(page.engine, []).append(page.number)
    if set(engines) - {result.engine}:  # some page was not made by the engine named above
        front_matter["engines"] = engines
    if result.fallbacks:  # never a silent switch: each page another engine read, and why
        front_matter["fallback"] = [
            {"page": number, "engine": engine, "why": why.strip()}
            for number, reason in result.fallbacks.items()
            for engine, _, why in [reason.partition(":")]
        ]
    if source_folder is not None:
        front_matter["source_folder"] = source_folder
    if result.truncated_pages:  # never a silent cut: the reader learns which pages may be incomplete
        front_matter["truncated"] = result.truncated_pages
    if result.text_sources():
        front_matter["pdf_text"] = result.text_sources()
    if result.warnings:
        front_matter["warnings"] = result.warnings
    header = yaml.safe_dump(front_matter, sort_keys=False, allow_unicode=True, width=_YAML_WIDTH)
    return f"---\n{header}---\n\n{result.markdown.rstrip()}".rstrip("\n") + "\n"


def read_metadata(path: Path) -> dict[str, Any] | None:
    """Textdrop's metadata from a sidecar, or ``None`` when textdrop did not write the file.

    A ``.md`` file counts when its front matter (within the first 64 KiB) is a mapping with a
    ``textdrop`` key; a ``.json`` file when its top-level object has a ``textdrop`` object. Plain-text
    files carry no metadata.

    Args:
        path: the file to inspect.

    Returns:
        For Markdown, the front matter mapping. For JSON, a mapping with the same keys as the front
        matter (``textdrop`` (version), ``source``, ``sha256``, ``engine``, ``model``, ``pages``
        (count), ``created``, ``seconds``, and ``source_folder`` where recorded). ``None``
        for anything else: another suffix, no or foreign front matter, invalid YAML or JSON, binary or
        non-UTF-8 content, a missing or unreadable file, a directory. Never raises for a bad file.
    """
    fmt = _SUFFIX_FORMATS.get(path.suffix.lower())
    return None if fmt is None else _read_metadata(path, fmt)


def sidecar_path(
    source: Path,
    fmt: str = "md",
    *,
    out_dir: Path | None = None,
    template: str = DEFAULT_TEMPLATE,
    content: str | None = None,
) -> Path:
    """The first name the sidecar of ``source`` can be written to without clobbering another file.

    Candidates are the template's name in ``out_dir`` (default: the source's folder), then numbered
    variants with ``.1``, ``.2``, … before the extension. A candidate is usable when nothing is there, or
    when it is a regular file textdrop wrote for a source of the same file name and, in an ``out_dir``,
    from the same folder (its ``source_folder``; one written before textdrop recorded it counts as the
    same), so sources of one name from several folders get one sidecar each there. Plain-text sidecars
    carry no metadata: an existing ``.txt`` is usable only when it already holds ``content``. A
    directory, a symlink or any other non-regular file is never usable.

    Args:
        source: the source file (only its name and folder are used; it need not exist).
        fmt: one of :data:`FORMATS`.
        out_dir: folder for the sidecar, or ``None`` for the source's folder.
        template: the sidecar name template (see :class:`SidecarOptions`).
        content: for ``txt`` only: the text about to be written.

    Returns:
        The path to write to; it may exist (then it is textdrop's own sidecar for this source).

    Raises:
        ValueError: unknown ``fmt`` or an invalid ``template``.
        OutputError: all of the first 1000 candidates are taken by other files.
    """
    _check_format(fmt)
    _check_template(template)
    folder = source.parent if out_dir is None else out_dir
    for number in range(MAX_CANDIDATES):
        candidate = folder / _file_name(template, source, fmt, number)
        if _usable(candidate, source, fmt, content, _source_folder(source, out_dir)):
            return candidate
    raise OutputError(
        f"No free name for the {fmt} sidecar of {source.name} in {folder}: the first {MAX_CANDIDATES} "
        f"candidate names are taken by other files. Move or delete them, or choose another output "
        f"folder or sidecar template."
    )


LAYOUT_RECORDS = {True: ("regions", "lines"), False: ("off",)}
"""The ``layout`` a sidecar records (``PageResult.layout``) for each ``RecognizeOptions.layout``: with the
layout step on, a page is read through regions or, too small for the model, by its lines."""


def find_up_to_date(
    source: Path,
    sha256: str,
    fmt: str = "md",
    *,
    out_dir: Path | None = None,
    template: str = DEFAULT_TEMPLATE,
    layout: bool | None = None,
) -> Path | None:
    """An existing sidecar that textdrop wrote for this version of ``source``.

    Checks the candidate names of :func:`sidecar_path` in order, up to the first that does not exist.
    In an ``out_dir``, the sidecar must also name the source's folder (or none, as older ones). With
    ``layout`` given, a sidecar that records how its pages were ordered must have been read with the same
    setting (:data:`LAYOUT_RECORDS`); one that records nothing (a VLM engine, a PDF text layer) passes.

    Args:
        source: the source file.
        sha256: hex SHA-256 of the source's current content.
        fmt: one of :data:`FORMATS`.
        out_dir: folder for the sidecar, or ``None`` for the source's folder.
        template: the sidecar name template.
        layout: ``RecognizeOptions.layout`` of the run asking, or ``None`` not to compare it.

    Returns:
        The sidecar's path when its metadata names this source and ``sha256`` (and ``layout``); ``None``
        otherwise, and
        always for ``txt`` (it carries no metadata).

    Raises:
        ValueError: unknown ``fmt`` or an invalid ``template``.
    """
    _check_format(fmt)
    _check_template(template)
    if fmt == "txt":
        return None
    folder = source.parent if out_dir is None else out_dir
    source_folder = _source_folder(source, out_dir)
    for number in range(MAX_CANDIDATES):
        candidate = folder / _file_name(template, source, fmt, number)
        if not os.path.lexists(candidate):
            return None
        metadata = None if candidate.is_symlink() else _read_metadata(candidate, fmt)
        if (
            _names(metadata, source, source_folder)
            and metadata.get("sha256") == sha256
            and (layout is None or metadata.get("layout") in (None, *LAYOUT_RECORDS[layout]))
        ):
            return candidate
    return None


def write_sidecar(
    result: OcrResult,
    source: Path,
    fmt: str = "md",
    *,
    out_dir: Path | None = None,
    template: str = DEFAULT_TEMPLATE,
) -> Path:
    """Render ``result`` and write it atomically as the sidecar of ``source``.

    The name comes from :func:`sidecar_path`, so a file textdrop did not write is never overwritten. The
    metadata names ``source.name`` as the source. A ``txt`` sidecar that already holds the same text is
    left as it is. A ``pdf`` is the searchable PDF of :func:`~.pdfout.searchable_pdf`, built
    from ``source`` (read again, never modified). The new file gets mode 0o644 less the process umask,
    like any newly created file.

    Args:
        result: the recognised document.
        source: the source file; it is never modified.
        fmt: one of :data:`FORMATS`.
        out_dir: folder for the sidecar (created with its parents when missing), or ``None`` for the
            source's folder.
        template: the sidecar name template.

    Returns:
        The sidecar's path.

    Raises:
        ValueError: unknown ``fmt`` or an invalid ``template``.
        OutputError: the folder cannot be created or written, the disk is full, or no name is free.
    """
    source_folder = _source_folder(source, out_dir)
    named = replace(result, source=file_label(source.name))
    if fmt == "pdf":
        from textdrop.engine.documents.pdfout import searchable_pdf

        content: str | bytes = searchable_pdf(named, source)
    else:
        content = render(named, fmt, source_folder=source_folder)
    if out_dir is not None:
        try:
            out_dir.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise OutputError(
                f"Cannot create the output folder {out_dir}: {error.strerror or error}. "
                f"Check that its parent is a writable folder, or choose another output folder."
            ) from error
    target = sidecar_path(
        source, fmt, out_dir=out_dir, template=template, content=content if isinstance(content, str) else None
    )
    if fmt == "txt" and target.is_file():
        log.debug("%s already holds this text", target)
        return target
    _atomic_write(target, content)
    log.debug("wrote %s", target)
    return target


def is_temp_file(name: str) -> bool:
    """True for the name of a temp file that :func:`write_sidecar` creates while writing."""
    return _TEMP_NAME.match(name) is not None


def remove_stale_temp_files(folder: Path) -> list[Path]:
    """Delete temp files that a textdrop process left in ``folder`` when it was killed mid-write.

    Only regular files named by :func:`is_temp_file` whose writer process no longer runs are removed,
    so another textdrop process writing in the same folder keeps its temp file. Never raises: a folder
    that cannot be listed yields nothing, a file that cannot be removed is logged.

    Returns:
        The paths removed.
    """
    removed = []
    try:
        entries = list(os.scandir(folder))
    except OSError as error:
        log.debug("cannot list %s for stale temp files: %s", folder, error)
        return removed
    for entry in entries:
        match = _TEMP_NAME.match(entry.name)
        if not match or not entry.is_file(follow_symlinks=False):
            continue
        if psutil.pid_exists(int(match.group(1))):  # this process, or another textdrop still writing
            continue
        path = Path(entry.path)
        try:
            path.unlink()
        except FileNotFoundError:
            continue
        except OSError as error:
            log.warning("cannot remove the stale temp file %s: %s", path, error)
            continue
        log.info("removed %s, left by an interrupted sidecar write", path)
        removed.append(path)
    return removed


def _check_format(fmt: str) -> None:
    if fmt not in FORMATS:
        raise ValueError(f"unknown sidecar format {fmt!r}; use one of {', '.join(FORMATS)}")


def _check_template(template: str) -> None:
    """Raise ValueError with a message for the user unless ``template`` makes a valid file name."""
    if "/" in template or "\\" in template:
        raise ValueError(f"sidecar template {template!r} must be a file name, without '/' or '\\'")
    try:
        fields = [field for _, field, _, _ in _FORMATTER.parse(template) if field is not None]
    except ValueError as error:
        raise ValueError(f"sidecar template {template!r} is not a valid format string: {error}") from None
    unknown = [field for field in fields if field not in _PLACEHOLDERS]
    if unknown:
        raise ValueError(
            f"sidecar template {template!r} has unknown placeholder(s) "
            f"{', '.join('{' + field + '}' for field in unknown)}; use only {{name}}, {{stem}} and {{ext}}"
        )
    if "ext" not in fields:
        raise ValueError(f"sidecar template {template!r} must contain {{ext}}, the format's extension")
    try:
        _file_name(template, Path("scan.jpg"), "md", 1)
    except ValueError as error:
        raise ValueError(f"sidecar template {template!r} cannot be formatted: {error}") from None


def _file_name(template: str, source: Path, ext: str, number: int) -> str:
    """The template's file name; with ``number`` > 0, ``"{number}."`` goes before the last ``{ext}``."""
    values = {"name": source.name, "stem": source.stem, "ext": ext}
    parts = list(_FORMATTER.parse(template))
    last_ext = max(index for index, part in enumerate(parts) if part[1] == "ext")
    pieces = []
    for index, (literal, field, spec, conversion) in enumerate(parts):
        pieces.append(literal)
        if field is None:
            continue
        if number and index == last_ext:
            pieces.append(f"{number}.")
        value = _FORMATTER.convert_field(values[field], conversion)
        pieces.append(_FORMATTER.format_field(value, spec or ""))
    return "".join(pieces)


def _source_folder(source: Path, out_dir: Path | None) -> str | None:
    """The source's absolute folder as recorded in a sidecar written to ``out_dir``; ``None`` beside it."""
    return None if out_dir is None else file_label(os.path.abspath(source.parent))


def _names(metadata: dict[str, Any] | None, source: Path, source_folder: str | None) -> bool:
    """True when a sidecar's metadata names ``source``: its file name and, in an output folder, its folder
    (a sidecar without ``source_folder``, written before it was recorded, is taken to be the source's)."""
    if not metadata or metadata.get("source") != file_label(source.name):
        return False
    recorded = metadata.get("source_folder")
    return source_folder is None or recorded is None or recorded == source_folder


def _usable(candidate: Path, source: Path, fmt: str, content: str | None, source_folder: str | None) -> bool:
    if not os.path.lexists(candidate):
        return True
    if candidate.is_symlink() or not candidate.is_file():
        return False
    if fmt == "txt":
        return content is not None and _holds(candidate, content.encode("utf-8"))
    return _names(_read_metadata(candidate, fmt), source, source_folder)


def _holds(path: Path, data: bytes) -> bool:
    """True when the file's bytes are exactly ``data``; False also when it cannot be read."""
    try:
        return path.stat().st_size == len(data) and path.read_bytes() == data
    except OSError:
        return False


def _read_metadata(path: Path, fmt: str) -> dict[str, Any] | None:
    """:func:`read_metadata` for a file known to be of format ``fmt``."""
    if not path.is_file():  # also keeps a FIFO from blocking the read
        return None
    if fmt == "pdf":
        from textdrop.engine.documents.pdfout import read_metadata as read_pdf_metadata

        return read_pdf_metadata(path)
    try:
        with path.open("rb") as handle:
            head = handle.read(FRONT_MATTER_LIMIT)
            # an incremental decoder accepts a multi-byte character cut off at the limit
            text = codecs.getincrementaldecoder("utf-8")().decode(head, final=False)
            if fmt == "md":
                return _front_matter(text)
            # textdrop writes its key first; skip parsing big foreign JSON files
            if not text.lstrip().startswith("{") or '"textdrop"' not in text:
                return None
            rest = handle.read()
        data = json.loads((head + rest).decode("utf-8"))
    except (OSError, ValueError, yaml.YAMLError, RecursionError) as error:
        log.debug("no textdrop metadata in %s: %s", path, error)
        return None
    if not isinstance(data, dict) or not isinstance(data.get("textdrop"), dict):
        return None
    pages = data.get("pages")
    listed = pages if isinstance(pages, list) else []
    layout = next((page["layout"] for page in listed if isinstance(page, dict) and page.get("layout")), None)
    metadata = {
        "textdrop": data["textdrop"].get("version"),
        "source": data.get("source"),
        "sha256": data.get("sha256"),
        "engine": data.get("engine"),
        "model": data.get("model"),
        "pages": len(pages) if isinstance(pages, list) else pages,
        "created": data["textdrop"].get("created"),
        "seconds": data.get("seconds"),
    }
    if layout:
        metadata["layout"] = layout
    if "source_folder" in data["textdrop"]:
        metadata["source_folder"] = data["textdrop"]["source_folder"]
    return metadata


def _front_matter(text: str) -> dict[str, Any] | None:
    match = _FRONT_MATTER.match(text)
    if match is None:
        return None
    data = yaml.safe_load(match.group(1))
    return data if isinstance(data, dict) and "textdrop" in data else None


def _atomic_write(target: Path, content: str | bytes) -> None:
    """Write ``content`` (text as UTF-8) to a temp file beside ``target``, fsync it, rename it into place."""
    folder = target.parent
    hint = "Check that the folder exists and is writable, and that the disk has free space."
    try:
        handle, name = tempfile.mkstemp(dir=folder, prefix=f"{TEMP_PREFIX}{os.getpid()}-", suffix=".tmp")
    except OSError as error:
        raise OutputError(f"Cannot write a sidecar in {folder}: {error.strerror or error}. {hint}") from error
    temp = Path(name)
    try:
        with os.fdopen(handle, "wb") as file:
            file.write(content.encode("utf-8") if isinstance(content, str) else content)
            file.flush()
            os.fsync(file.fileno())
        temp.chmod(0o644 & ~_umask())
        os.replace(temp, target)
    except BaseException as error:
        _discard(temp)
        if not isinstance(error, Exception):
            raise
        reason = error.strerror if isinstance(error, OSError) and error.strerror else error
        raise OutputError(f"Cannot write the sidecar {target.name} in {folder}: {reason}. {hint}") from error


def _discard(temp: Path) -> None:
    try:
        temp.unlink(missing_ok=True)
    except OSError as error:
        log.warning("cannot remove the temp file %s: %s", temp, error)


def _umask() -> int:
    """The process umask, read without changing it where the platform allows."""
    if sys.platform.startswith("linux"):
        try:
            for line in Path("/proc/self/status").read_text().splitlines():
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
        except (OSError, ValueError, IndexError):
            pass
    # os.umask can only be read by setting it; the lock keeps our own threads from interleaving
    with _umask_lock:
        mask = os.umask(0o022)
        os.umask(mask)
    return mask
