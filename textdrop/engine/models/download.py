"""Model downloads through huggingface_hub, into the standard Hugging Face cache.

Every transfer goes through huggingface_hub (2.4): :func:`~huggingface_hub.hf_hub_download` per file for a
llama.cpp build (a GGUF and its mmproj), :func:`~huggingface_hub.snapshot_download` with ``allow_patterns``
for an mlx-vlm folder. Models therefore land in the cache other tools share (``models--org--name/blobs`` and
``snapshots/<commit>``), and huggingface_hub's environment variables apply as it reads them **when it is
imported**: ``HF_HOME`` / ``HF_HUB_CACHE`` (where), ``HF_ENDPOINT`` (a mirror), ``HF_HUB_OFFLINE`` (no
network), ``HF_TOKEN`` (gated repos). This module reads the resulting ``huggingface_hub.constants`` at
call time, so code (and tests) that change those constants are honoured.

What huggingface_hub does for us, and textdrop relies on:

- **Progress**: the ``tqdm_class`` argument. huggingface_hub instantiates that class per file (plain HTTP and
  Xet downloads alike) and, in ``snapshot_download``, for its aggregate bars; :class:`_ByteCounter` supplies a
  class that adds up the bytes written to disk and calls ``progress(done_bytes, total_bytes)``.
- **Resume**: within one download, a dropped connection or a read timeout is retried up to five times from
  the byte where it stopped (an HTTP ``Range`` request). huggingface_hub 2.4 writes each download to a
  process-unique ``<etag>.<id>.incomplete`` file that it deletes when the download fails, so a pull that is
  interrupted (Ctrl-C, a crash) starts that file again from zero on the next pull; files already completed
  are kept and not downloaded again.
- **Integrity**: a file is moved into the cache only when its size matches the hub's; blobs are
  content-addressed.

Language packs of the embedded engine (:data:`~.catalog.LANGUAGE_PACKS`) take the same path
as a llama.cpp build (named files of one repository): :func:`pull_pack`, :func:`pack_files`,
:func:`remove_pack`.

Before any request, :func:`pull` checks offline mode and free disk space; :func:`memory_warning` compares a
model with this machine's memory. :func:`remove` deletes through huggingface_hub's cache-management API.
"""

from __future__ import annotations

import errno
import importlib
import logging
import re
import shutil
import subprocess
import threading
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import psutil
from huggingface_hub import (
    constants,
    hf_hub_download,
    scan_cache_dir,
    snapshot_download,
    try_to_load_from_cache,
)
from huggingface_hub.errors import (
    CacheNotFound,
    DryRunError,
    FileMetadataError,
    GatedRepoError,
    HfHubHTTPError,
    LocalEntryNotFoundError,
    OfflineModeIsEnabled,
    RemoteEntryNotFoundError,
    RepositoryNotFoundError,
    RevisionNotFoundError,
    XetDownloadError,
)
from huggingface_hub.utils import filter_repo_objects

from textdrop.engine.errors import DownloadError, ModelError
from textdrop.engine.models import catalog
from textdrop.engine.models.catalog import (
    GgufFiles,
    LanguagePack,
    LocalModel,
    MlxFiles,
    ModelEntry,
    is_apple_silicon,
)

log = logging.getLogger(__name__)

Progress = Callable[[int, int], None]
"""``progress(done_bytes, total_bytes)``, called from download threads as bytes reach the disk."""

LOCAL_PAGE_SIZE = 1024
"""Longest page side in pixels for a model given as a local path: its family is unknown (``generic``), and
1024 px is a resolution every VLM in the catalog accepts without running out of context."""

DISK_HEADROOM_BYTES = 512 * 1024**2
"""Free space (bytes) a download must leave on the cache's disk, on top of the model itself."""

UNIFIED_GPU_SHARE = 0.75
"""Share of an Apple Silicon Mac's unified memory its GPU may use (macOS's recommended working-set size is
about two thirds to three quarters of RAM)."""

CPU_ONLY_NOTE_BYTES = 1_000_000_000
"""Models above this size (bytes) get a note when llama.cpp would run them without a GPU."""

_BACKEND_NAMES = {"llama": "llama.cpp", "mlx": "mlx-vlm"}
_SHARD = re.compile(r"-(\d{5})-of-(\d{5})\.gguf$", re.IGNORECASE)


def _transport_errors() -> tuple[type[BaseException], ...]:
    """Connection-level exception classes of the HTTP clients huggingface_hub may use (httpx2, httpx)."""
    found: list[type[BaseException]] = []
    for name in ("httpx2", "httpx"):
        try:
            found.append(importlib.import_module(name).TransportError)
        except (ImportError, AttributeError):
            continue
    return tuple(found)


_TRANSPORT_ERRORS = _transport_errors()


def cache_dir() -> Path:
    """The hub cache folder huggingface_hub uses: ``HF_HUB_CACHE``, else ``HF_HOME/hub``, else
    ``~/.cache/huggingface/hub`` (as ``huggingface_hub.constants`` resolved them)."""
    return Path(constants.HF_HUB_CACHE)


def endpoint() -> str:
    """The hub URL downloads come from: ``HF_ENDPOINT`` (a mirror) or ``https://huggingface.co``."""
    return constants.ENDPOINT


def format_bytes(size: int) -> str:
    """``size`` bytes as ``1.2 GB`` / ``350 MB`` (decimal units, as download sizes are usually given)."""
    if size >= 1_000_000_000:
        return f"{size / 1e9:.1f} GB"
    if size >= 1_000_000:
        return f"{size / 1e6:.0f} MB"
    return f"{max(size, 0) / 1e3:.0f} kB"


# -- finding models on disk -------------------------------------------------------------------------------


def locate(ref: str, backend: str) -> LocalModel:
    """The files of a model, ready to load, without any network access.

    Args:
        ref: A catalog id (found in the hub cache), or a local path: for ``llama`` a ``.gguf`` file (its
            projector is the one sibling whose name contains ``mmproj``) or a folder with exactly one model
            ``.gguf`` and one ``mmproj`` ``.gguf``; for ``mlx`` a folder with ``config.json``. A catalog id
            wins over a same-named folder in the working directory (write ``./name`` for the folder).
        backend: ``llama`` or ``mlx``.

    Returns:
        The model; local paths get family ``generic`` and page size :data:`LOCAL_PAGE_SIZE`.

    Raises:
        ModelError: unknown id and no such path; the model has no build for ``backend``; it is not downloaded
            (the message says which ``textdrop models pull`` to run); a path without a projector or config.
    """
    _check_backend(backend)
    try:
        entry = catalog.find_entry(ref)
    except ModelError:
        entry = None
    if entry is not None:
        return _locate_entry(entry, backend)
    path = Path(ref).expanduser()
    if path.exists():
        return _locate_path(path, backend)
    raise ModelError(
        f"{ref!r} is neither a catalog model nor an existing file or folder. Known models: "
        f"{', '.join(catalog.known_ids())}; or give the path of a .gguf file (llama) or a model folder (mlx)."
    )


def is_downloaded(entry: ModelEntry, backend: str) -> bool:
    """Whether every file ``entry`` needs for ``backend`` is in the hub cache (no network access)."""
    try:
        _locate_entry(entry, backend)
    except ModelError:
        return False
    return True


def _check_backend(backend: str) -> None:
    if backend not in catalog.BACKENDS:
        raise ModelError(f"Unknown backend {backend!r}: choose one of {', '.join(catalog.BACKENDS)}.")


def _build(entry: ModelEntry, backend: str) -> GgufFiles | MlxFiles:
    _check_backend(backend)
    files = entry.files_for(backend)
    if files is None:
        others = ", ".join(_BACKEND_NAMES[b] for b in entry.backends) or "none"
        raise ModelError(f"{entry.id} has no {_BACKEND_NAMES[backend]} build (it has: {others}).")
    return files


def _locate_entry(entry: ModelEntry, backend: str) -> LocalModel:
    files = _build(entry, backend)
    hint = f"run: textdrop models pull {entry.id} --backend {backend}"
    if isinstance(files, GgufFiles):
        paths = {name: _cached_file(files, name) for name in files.files}
        missing = [name for name, path in paths.items() if path is None]
        if missing:
            raise ModelError(
                f"{entry.id} is not downloaded for llama.cpp (missing {', '.join(missing)}); {hint}"
            )
        model, mmproj = paths[files.model], paths[files.mmproj]
        assert model is not None and mmproj is not None
        return LocalModel(entry.id, entry.family, backend, model, mmproj, entry.page_size)
    folder = _cached_snapshot(files)
    if folder is None:
        raise ModelError(f"{entry.id} is not downloaded for mlx-vlm; {hint}")
    return LocalModel(entry.id, entry.family, backend, folder, None, entry.page_size)


def _cached_file(files: GgufFiles, name: str) -> Path | None:
    found = try_to_load_from_cache(files.repo, name, cache_dir=cache_dir(), revision=files.revision)
    return Path(found) if isinstance(found, str) else None


def _cached_snapshot(files: MlxFiles) -> Path | None:
    try:
        folder = snapshot_download(
            files.repo,
            revision=files.revision,
            cache_dir=cache_dir(),
            allow_patterns=list(files.allow_patterns),
            local_files_only=True,
        )
    except (LocalEntryNotFoundError, OSError) as exc:  # IncompleteSnapshotError is a LocalEntryNotFoundError
        log.debug("%s not in the cache: %s", files.repo, exc)
        return None
    path = Path(folder)
    return path if (path / "config.json").is_file() else None


def _is_mmproj(path: Path) -> bool:
    return "mmproj" in path.name.lower()


def _ggufs(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.suffix.lower() == ".gguf" and p.is_file())


def _locate_path(path: Path, backend: str) -> LocalModel:
    if backend == "mlx":
        if path.is_dir() and (path / "config.json").is_file():
            return LocalModel(path.name, "generic", backend, path, None, LOCAL_PAGE_SIZE)
        raise ModelError(
            f"{path} is not an mlx-vlm model folder (no config.json in it): give the folder that holds "
            "config.json and the .safetensors weights."
        )
    if path.is_file():
        if path.suffix.lower() != ".gguf":
            raise ModelError(f"{path} is not a .gguf file: llama.cpp needs a GGUF model and its mmproj file.")
        if _is_mmproj(path):
            raise ModelError(
                f"{path.name} is a vision projector (mmproj): give the language-model .gguf instead."
            )
        model = path
    else:
        models = [p for p in _ggufs(path) if not _is_mmproj(p)]
        # a split model loads from its first shard (name-00001-of-0000N.gguf)
        models = [p for p in models if not (m := _SHARD.search(p.name)) or int(m.group(1)) == 1]
        if not models:
            raise ModelError(f"No language-model .gguf file in {path}.")
        if len(models) > 1:
            names = ", ".join(p.name for p in models)
            raise ModelError(f"{path} holds several GGUF models ({names}): give the path of the one to use.")
        model = models[0]
    projectors = [p for p in _ggufs(model.parent) if _is_mmproj(p)]
    if not projectors:
        raise ModelError(
            f"No vision projector next to {model.name}: put the model's mmproj .gguf file in {model.parent} "
            "(a vision model needs it to read images)."
        )
    if len(projectors) > 1:
        names = ", ".join(p.name for p in projectors)
        raise ModelError(
            f"Several vision projectors next to {model.name} ({names}): keep only the matching one."
        )
    return LocalModel(model.name, "generic", "llama", model, projectors[0], LOCAL_PAGE_SIZE)


# -- downloading --------------------------------------------------------------------------------------------


class _ByteCounter:
    """Adds up the bytes huggingface_hub reports through its ``tqdm_class`` hook, from any thread.

    :meth:`bar_class` returns a minimal tqdm look-alike (huggingface_hub accepts a class that "mimics tqdm").
    Only byte bars count: ``hf_hub_download`` creates one per file (``unit="B"``; its ``update()`` is bytes
    written to disk, ``update_transfer()`` the network bytes, which we ignore); ``snapshot_download`` adds a
    file-count bar (no unit) and a network "Downloading bytes" bar that repeats the same bytes, both ignored.
    """

    def __init__(self, total: int, initial: int, callback: Progress | None) -> None:
        self.total = total
        self.done = initial
        self._callback = callback
        self._lock = threading.Lock()
        self._report()

    def add(self, count: float | None) -> None:
        with self._lock:
            self.done += int(count or 0)
            self._report()

    def finish(self) -> None:
        """Report the whole total: files whose content was already cached under another name (huggingface_hub
        links identical blobs instead of downloading them) never report their bytes."""
        with self._lock:
            self.done = self.total
            self._report()

    def _report(self) -> None:
        if self._callback is not None:
            self._callback(min(max(self.done, 0), self.total), self.total)

    def bar_class(self) -> type:
        counter = self

        class _Bar:
            def __init__(self, *args: Any, **kwargs: Any) -> None:
                self.n = kwargs.get("initial") or 0
                self.total = kwargs.get("total")
                self.desc = kwargs.get("desc") or ""
                self.counts = kwargs.get("unit") == "B" and not self.desc.startswith("Downloading bytes")
                self.format_dict: dict[str, Any] = {"rate": None}
                if self.counts and self.n:
                    counter.add(self.n)

            def update(self, n: float | None = 1) -> None:
                self.n += n or 0
                if self.counts:
                    counter.add(n)

            def update_transfer(self, n: float | None = 1) -> None:
                """Network bytes (Xet may fetch fewer than it writes): the disk bytes come via update()."""

            def set_transfer_postfix_str(self, *args: Any, **kwargs: Any) -> None:
                pass

            def set_postfix_str(self, *args: Any, **kwargs: Any) -> None:
                pass

            def set_description(self, *args: Any, **kwargs: Any) -> None:
                pass

            def set_description_str(self, *args: Any, **kwargs: Any) -> None:
                pass

            def refresh(self, *args: Any, **kwargs: Any) -> None:
                pass

            def clear(self, *args: Any, **kwargs: Any) -> None:
                pass

            def close(self) -> None:
                pass

            def __enter__(self) -> _Bar:
                return self

            def __exit__(self, *exc: object) -> None:
                pass

        return _Bar


def _silent_bar() -> type:
    """A bar class that shows nothing, for the dry runs (huggingface_hub would otherwise draw its own)."""
    return _ByteCounter(0, 0, None).bar_class()


def pull(entry: ModelEntry, backend: str, *, progress: Progress | None = None) -> LocalModel:
    """Download the files ``entry`` needs for ``backend`` into the hub cache (only those), then locate them.

    A model already complete in the cache is returned without any network access. Otherwise free disk space
    is checked against the catalog size before any request, and again against the exact sizes the hub
    reports; files already in the cache are not downloaded again.

    Args:
        entry: The catalog entry.
        backend: ``llama`` (GGUF + mmproj, one ``hf_hub_download`` each) or ``mlx`` (``snapshot_download``
            filtered by the entry's ``allow_patterns``).
        progress: Called as ``progress(done_bytes, total_bytes)`` while files arrive, from download threads;
            bytes already in the cache count as done.

    Raises:
        ModelError: ``entry`` has no build for ``backend``.
        DownloadError: offline mode is on; not enough free disk; the hub cannot be reached; the repository,
            revision or a file is missing on the hub; the transfer failed or the disk filled up.
    """
    files = _build(entry, backend)
    if is_downloaded(entry, backend):
        log.info("%s (%s) is already downloaded", entry.id, backend)
        return _locate_entry(entry, backend)
    if constants.is_offline_mode():
        raise DownloadError(
            f"Cannot download {entry.id}: offline mode is on (HF_HUB_OFFLINE is set). Unset HF_HUB_OFFLINE "
            "to download it, or give the path of model files you already have."
        )
    _check_disk(entry, _missing_estimate(files))
    try:
        if isinstance(files, GgufFiles):
            _pull_files(entry, files, progress)
        else:
            _pull_mlx(entry, files, progress)
    except DownloadError:
        raise
    except Exception as exc:
        mapped = _download_error(entry, files, exc)
        if mapped is None:
            raise
        raise mapped from exc
    return _locate_entry(entry, backend)


def _pull_files(
    entry: ModelEntry | LanguagePack, files: GgufFiles | LanguagePack, progress: Progress | None
) -> None:
    """Download the named files of one repository (a GGUF build, or a language pack), planning first."""
    cache = cache_dir()
    plans = []
    for name in files.files:
        try:
            plans.append(
                hf_hub_download(
                    files.repo,
                    name,
                    revision=files.revision,
                    cache_dir=cache,
                    dry_run=True,
                    tqdm_class=_silent_bar(),
                )
            )
        except RemoteEntryNotFoundError as exc:
            raise _missing_file(files.repo, files.revision, name) from exc
    total = sum(plan.file_size or 0 for plan in plans)
    needed = sum(plan.file_size or 0 for plan in plans if plan.will_download)
    _check_disk(entry, needed)
    counter = _ByteCounter(total, total - needed, progress)
    bar = counter.bar_class()
    for plan in plans:
        if not plan.will_download:
            continue
        log.info("downloading %s from %s", plan.filename, files.repo)
        try:
            hf_hub_download(
                files.repo, plan.filename, revision=files.revision, cache_dir=cache, tqdm_class=bar
            )
        except RemoteEntryNotFoundError as exc:
            raise _missing_file(files.repo, files.revision, plan.filename) from exc
    counter.finish()


def _pull_mlx(entry: ModelEntry, files: MlxFiles, progress: Progress | None) -> None:
    cache = cache_dir()
    patterns = list(files.allow_patterns)
    plans = snapshot_download(
        files.repo,
        revision=files.revision,
        cache_dir=cache,
        allow_patterns=patterns,
        dry_run=True,
        tqdm_class=_silent_bar(),
    )
    if not any(plan.filename == "config.json" for plan in plans):
        raise DownloadError(
            f"{files.repo} (revision {files.revision}) on {endpoint()} has no config.json: it is not an "
            "mlx-vlm model folder, so the catalog entry is wrong or the mirror incomplete."
        )
    total = sum(plan.file_size or 0 for plan in plans)
    needed = sum(plan.file_size or 0 for plan in plans if plan.will_download)
    _check_disk(entry, needed)
    counter = _ByteCounter(total, total - needed, progress)
    log.info("downloading %d files of %s", len(plans), files.repo)
    snapshot_download(
        files.repo,
        revision=files.revision,
        cache_dir=cache,
        allow_patterns=patterns,
        tqdm_class=counter.bar_class(),
    )
    counter.finish()


def _ref_snapshot(repo: str, revision: str) -> Path | None:
    """The snapshot folder ``revision`` (a branch, tag or commit) points to in the cache, if any."""
    folder = cache_dir() / f"models--{repo.replace('/', '--')}"
    commit = revision
    ref = folder / "refs" / revision
    if ref.is_file():
        commit = ref.read_text(encoding="utf-8").strip()
    snapshot = folder / "snapshots" / commit
    return snapshot if snapshot.is_dir() else None


def _missing_estimate(files: GgufFiles | MlxFiles | LanguagePack) -> int:
    """Bytes still to download according to the catalog size, less what the cache already holds."""
    have = 0
    snapshot = _ref_snapshot(files.repo, files.revision)
    if snapshot is not None:
        if isinstance(files, GgufFiles | LanguagePack):
            names: Iterable[str] = files.files
        else:
            present = [p.relative_to(snapshot).as_posix() for p in snapshot.rglob("*") if p.is_file()]
            names = filter_repo_objects(present, allow_patterns=list(files.allow_patterns))
        for name in names:
            path = snapshot / name
            if path.is_file():
                have += path.stat().st_size
    return max(files.size_bytes - have, 0)


def _existing_parent(path: Path) -> Path:
    for candidate in (path, *path.parents):
        if candidate.exists():
            return candidate
    return path


def _check_disk(entry: ModelEntry, needed: int) -> None:
    """Raise DownloadError when ``needed`` bytes plus :data:`DISK_HEADROOM_BYTES` do not fit in the cache."""
    if needed <= 0:
        return
    where = _existing_parent(cache_dir())
    try:
        free = shutil.disk_usage(where).free
    except OSError as exc:
        log.warning("cannot check free disk space in %s: %s", where, exc)
        return
    if free < needed + DISK_HEADROOM_BYTES:
        raise DownloadError(
            f"Not enough disk space for {entry.id}: {format_bytes(needed)} to download into {cache_dir()}, "
            f"but only {format_bytes(free)} free there ({format_bytes(DISK_HEADROOM_BYTES)} must stay free). "
            "Free some space, or set HF_HUB_CACHE to a folder on a larger disk."
        )


def _missing_file(repo: str, revision: str, name: str) -> DownloadError:
    return DownloadError(
        f"{name} is not in {repo} (revision {revision}) on {endpoint()}: the catalog entry is out of date or "
        "the mirror is incomplete."
    )


def _unreachable(entry: ModelEntry, reason: BaseException) -> DownloadError:
    return DownloadError(
        f"Cannot reach {endpoint()} to download {entry.id} ({reason}). Check the network connection or "
        "proxy, or set HF_ENDPOINT to a mirror."
    )


def _download_error(
    entry: ModelEntry, files: GgufFiles | MlxFiles, exc: BaseException
) -> DownloadError | None:
    """The DownloadError a huggingface_hub or network failure means, or None for an unexpected error."""
    repo = f"{files.repo} on {endpoint()}"
    if isinstance(exc, DryRunError) and exc.__cause__ is not None:  # snapshot_download's wrapper
        cause = exc.__cause__
        if _TRANSPORT_ERRORS and isinstance(cause, _TRANSPORT_ERRORS):
            return _unreachable(entry, cause)
        return _download_error(entry, files, cause)
    if isinstance(exc, OfflineModeIsEnabled) or isinstance(exc.__cause__, OfflineModeIsEnabled):
        return DownloadError(f"Cannot download {entry.id}: offline mode is on (HF_HUB_OFFLINE is set).")
    if isinstance(exc, GatedRepoError):
        return DownloadError(
            f"{repo} is gated: accept its terms on the model page, then log in with: hf auth login."
        )
    if isinstance(exc, RepositoryNotFoundError):
        return DownloadError(
            f"{repo} was not found (or is private): the catalog entry is out of date or the mirror lacks it."
        )
    if isinstance(exc, RevisionNotFoundError):
        return DownloadError(f"{repo} has no revision {files.revision!r}: the catalog entry is out of date.")
    if isinstance(exc, RemoteEntryNotFoundError):
        name = str(exc.response.url).rsplit("/", 1)[-1] if exc.response is not None else "a file"
        return _missing_file(files.repo, files.revision, name)
    if isinstance(exc, LocalEntryNotFoundError):  # the metadata request failed and nothing is cached
        cause = exc.__cause__
        if isinstance(cause, FileMetadataError):
            return DownloadError(
                f"{endpoint()} does not answer like a Hugging Face hub ({cause}). Check HF_ENDPOINT and any "
                "proxy."
            )
        return _unreachable(entry, cause if cause is not None else exc)
    if isinstance(exc, HfHubHTTPError):
        status = exc.response.status_code if exc.response is not None else "an error"
        return DownloadError(f"The hub answered {status} while downloading {entry.id} from {repo}: {exc}")
    if _TRANSPORT_ERRORS and isinstance(exc, _TRANSPORT_ERRORS):
        return DownloadError(
            f"The connection to {endpoint()} failed while downloading {entry.id} ({exc}). Run the same pull "
            "again: completed files are kept."
        )
    if isinstance(exc, XetDownloadError):
        return DownloadError(f"The Xet transfer of {entry.id} failed ({exc}). Run the same pull again.")
    if isinstance(exc, OSError):
        if exc.errno == errno.ENOSPC:
            return DownloadError(
                f"The disk filled up while downloading {entry.id} into {cache_dir()}. Free some space and "
                "run the pull again."
            )
        return DownloadError(f"Downloading {entry.id} failed: {exc}. Run the same pull again.")
    return None


# -- language packs -----------------------------------------------------------------------------------------


def pack_files(pack: LanguagePack) -> tuple[Path, Path | None] | None:
    """``(model, dictionary)`` of a downloaded pack in the hub cache (no network access), or None when any of
    its files is missing; the dictionary is None for a pack whose model carries its characters."""
    found = [_cached_file(pack, name) for name in pack.files]  # type: ignore[arg-type]
    if any(path is None for path in found):
        return None
    model = found[0]
    assert model is not None
    return model, found[1] if len(found) > 1 else None


def pull_pack(pack: LanguagePack, *, progress: Progress | None = None) -> tuple[Path, Path | None]:
    """Download a language pack into the hub cache, as :func:`pull` does a model (same checks, progress and
    errors); a model whose SHA-256 the catalogue knows is checked, and deleted when it differs.

    Raises:
        DownloadError: as :func:`pull`, and when the model's checksum differs from the catalogue's.
    """
    found = pack_files(pack)
    if found is None:
        if constants.is_offline_mode():
            raise DownloadError(
                f"Cannot download the {pack.id} language pack: offline mode is on (HF_HUB_OFFLINE is set). "
                "Unset HF_HUB_OFFLINE to download it."
            )
        _check_disk(pack, _missing_estimate(pack))  # type: ignore[arg-type]
        try:
            _pull_files(pack, pack, progress)
        except DownloadError:
            raise
        except Exception as exc:
            mapped = _download_error(pack, pack, exc)  # type: ignore[arg-type]
            if mapped is None:
                raise
            raise mapped from exc
        found = pack_files(pack)
        assert found is not None
    if pack.sha256 is not None and _sha256(found[0]) != pack.sha256:
        remove_pack(pack)
        raise DownloadError(
            f"The {pack.id} language pack's {pack.model} from {pack.repo} on {endpoint()} is not the file "
            "the catalogue names (SHA-256 differs); it was deleted. The hub or mirror serves another file: "
            "check HF_ENDPOINT, or update textdrop."
        )
    return found


def remove_pack(pack: LanguagePack) -> int:
    """Delete a language pack's files from the hub cache; returns the bytes freed.

    Raises:
        ModelError: the pack is not downloaded.
    """
    return _remove_files(pack.id, pack.repo, pack.revision, pack.files, None)


def _sha256(path: Path) -> str:
    from textdrop.engine.documents.sources import sha256_file

    return sha256_file(path)


# -- memory -------------------------------------------------------------------------------------------------


def _nvidia_vram() -> int | None:
    """Memory of the largest NVIDIA GPU in bytes (``nvidia-smi``); None without one or without the tool."""
    tool = shutil.which("nvidia-smi")
    if tool is None:
        return None
    try:
        result = subprocess.run(
            [tool, "--query-gpu=memory.total", "--format=csv,noheader,nounits"],
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        )
        sizes = [int(float(line)) for line in result.stdout.split() if line.strip()]
    except (OSError, subprocess.SubprocessError, ValueError) as exc:
        log.debug("nvidia-smi failed: %s", exc)
        return None
    return max(sizes) * 1024**2 if sizes else None


def memory_warning(entry: ModelEntry, backend: str) -> str | None:
    """A warning to show before a pull when the model looks too large for this machine, else None.

    The need is the build's :attr:`~.catalog.GgufFiles.memory_need` (a published measurement, else the
    download size times :data:`~.catalog.MEMORY_FACTOR`), compared with: the GPU's share of unified memory
    (mlx on Apple Silicon), total and currently available RAM (``psutil``), and the
    largest NVIDIA GPU (``nvidia-smi``, llama.cpp only; without a GPU, larger models run slowly on the CPU).
    """
    files = entry.files_for(backend)
    if files is None:
        return None
    need = files.memory_need
    memory = psutil.virtual_memory()
    warnings: list[str] = []
    apple = is_apple_silicon()
    if apple:
        budget = int(memory.total * UNIFIED_GPU_SHARE)
        if need > budget:
            warnings.append(
                f"{entry.id} needs about {format_bytes(need)} of memory, more than the about "
                f"{format_bytes(budget)} of this Mac's {format_bytes(memory.total)} its GPU can use: it may "
                "swap heavily or fail to load."
            )
    elif need > memory.total:
        warnings.append(
            f"{entry.id} needs about {format_bytes(need)} of memory, more than this machine's "
            f"{format_bytes(memory.total)}: it will not load."
        )
    if not warnings and need > memory.available:
        warnings.append(
            f"{entry.id} needs about {format_bytes(need)} of memory and only "
            f"{format_bytes(memory.available)} is free now: close other programs before using it."
        )
    if backend == "llama" and not apple:
        vram = _nvidia_vram()
        if vram is not None and need > vram:
            warnings.append(
                f"It is larger than the GPU's {format_bytes(vram)}: llama.cpp keeps part of it on the CPU, "
                "which is slower."
            )
        elif vram is None and files.size_bytes > CPU_ONLY_NOTE_BYTES:
            warnings.append("No NVIDIA GPU found (nvidia-smi): llama.cpp will run it on the CPU, slowly.")
    return " ".join(warnings) or None


# -- removing -----------------------------------------------------------------------------------------------


def remove(entry: ModelEntry, backend: str) -> int:
    """Delete ``entry``'s files for ``backend`` from the hub cache; returns the bytes freed.

    Only the revision the entry's ``revision`` points to is touched, and within it only the entry's files:
    when they are all the revision holds, the whole revision goes (``delete_revisions``, which also removes
    the repository folder when it was the last revision); when another tool cached more files of the same
    revision (other quantisations, say), only the entry's files and the blobs nobody else uses are deleted
    (``delete_files``). Uses huggingface_hub's cache scan, so shared blobs are handled as it handles them.

    Raises:
        ModelError: ``entry`` has no build for ``backend``, or nothing of it is in the cache.
    """
    files = _build(entry, backend)
    if isinstance(files, GgufFiles):
        freed = _remove_files(
            f"{entry.id} ({_BACKEND_NAMES[backend]})", files.repo, files.revision, files.files, None
        )
    else:
        freed = _remove_files(
            f"{entry.id} ({_BACKEND_NAMES[backend]})", files.repo, files.revision, None, files.allow_patterns
        )
    log.info("removed %s (%s): %d bytes freed", entry.id, backend, freed)
    return freed


def _remove_files(
    label: str, repo_id: str, revision_name: str, names: Iterable[str] | None, patterns: Iterable[str] | None
) -> int:
    """Delete the files ``names`` (or those matching ``patterns``) of one revision from the hub cache, the
    whole revision when they are all it holds; returns the bytes freed. Raises ModelError when none is
    there."""
    not_there = ModelError(f"{label} is not downloaded: nothing to remove.")
    try:
        info = scan_cache_dir(cache_dir())
    except CacheNotFound:
        raise not_there from None
    repo = next((r for r in info.repos if r.repo_id == repo_id and r.repo_type == "model"), None)
    if repo is None:
        raise not_there
    revision = repo.refs.get(revision_name) or next(
        (r for r in repo.revisions if r.commit_hash == revision_name), None
    )
    if revision is None:
        raise not_there

    def relative(file: Any) -> str:
        return file.file_path.relative_to(revision.snapshot_path).as_posix()

    if names is not None:
        wanted = [f for f in revision.files if relative(f) in set(names)]
    else:
        wanted = list(filter_repo_objects(revision.files, allow_patterns=list(patterns or ()), key=relative))
    if not wanted:
        raise not_there
    if len(wanted) == len(revision.files):
        strategy = info.delete_revisions(revision.commit_hash)
    else:
        strategy = info.delete_files(*wanted)
    freed = strategy.expected_freed_size
    strategy.execute()
    return freed


__all__ = [
    "DISK_HEADROOM_BYTES",
    "LOCAL_PAGE_SIZE",
    "Progress",
    "cache_dir",
    "endpoint",
    "format_bytes",
    "is_apple_silicon",
    "is_downloaded",
    "locate",
    "memory_warning",
    "pack_files",
    "pull",
    "pull_pack",
    "remove",
    "remove_pack",
]
