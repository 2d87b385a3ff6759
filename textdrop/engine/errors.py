"""One hierarchy of user-facing errors, each carrying the exit code the CLI returns.

Every failure a user can cause (a bad file, a limit, a missing engine, an unwritable folder) is a
:class:`TextdropError` subclass whose message says what is wrong and what to do next. The CLI prints
that message on one line and exits with ``exit_code``; a traceback is shown only with ``-v``.
(Pattern from OCRmyPDF's ``exceptions.py``.)
"""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    """Process exit codes of the ``textdrop`` command.

    In a batch, the command exits with the code of the first file that failed (``OK`` when none did).
    """

    OK = 0
    OTHER_ERROR = 1
    USAGE = 2
    INPUT_FILE = 3
    FILE_ACCESS = 4
    LIMIT_EXCEEDED = 5
    ENCRYPTED_PDF = 6
    ENGINE_UNAVAILABLE = 7
    OUTPUT = 8
    INVALID_CONFIG = 9
    MODEL = 10
    DOWNLOAD = 11
    FALLBACK = 12
    """Every file was read, but a VLM failed on some pages (or could not be loaded by ``auto``) and the
    embedded engine read them: the sidecars say which and why (``fallback:``). A failed file's code wins."""
    INTERRUPTED = 130
    """Stopped by SIGINT (Ctrl+C): 128 + 2, as a shell reports it."""
    TERMINATED = 143
    """Stopped by SIGTERM: 128 + 15."""


class TextdropError(Exception):
    """Base of every error a user can cause; ``str(error)`` is the one-line message."""

    exit_code: ExitCode = ExitCode.OTHER_ERROR

    def __init__(self, message: str, exit_code: ExitCode | None = None) -> None:
        super().__init__(message)
        self.message = message
        if exit_code is not None:
            self.exit_code = exit_code

    def __str__(self) -> str:
        return self.message


class UsageError(TextdropError):
    """Bad command-line arguments (no input matched, conflicting options)."""

    exit_code = ExitCode.USAGE


class InputFileError(TextdropError):
    """The input is not a readable image or PDF: empty, truncated, corrupt or of an unknown format."""

    exit_code = ExitCode.INPUT_FILE


class FileAccessError(TextdropError):
    """The input cannot be opened: missing, a directory, or no permission to read it."""

    exit_code = ExitCode.FILE_ACCESS


class LedgerError(FileAccessError):
    """The watcher's ledger cannot be opened, read or written: damaged, locked by another process for
    longer than its busy timeout, or on a full or read-only disk. The watch service stops on it: a
    file it could not record would otherwise be skipped silently."""


class LimitExceededError(TextdropError):
    """The input is larger than a configured limit (file size, pixels per page, pages)."""

    exit_code = ExitCode.LIMIT_EXCEEDED


class EncryptedPdfError(TextdropError):
    """The PDF is password-protected."""

    exit_code = ExitCode.ENCRYPTED_PDF


class EngineUnavailableError(TextdropError):
    """The requested engine is unknown, not installed, or cannot run on this machine."""

    exit_code = ExitCode.ENGINE_UNAVAILABLE


class OutputError(TextdropError):
    """A sidecar cannot be written (folder missing or read-only, disk full)."""

    exit_code = ExitCode.OUTPUT


class ConfigError(TextdropError):
    """The configuration file is not valid TOML or fails validation."""

    exit_code = ExitCode.INVALID_CONFIG


class ModelError(TextdropError):
    """A model is unknown, not downloaded, incomplete on disk, or too large for this machine."""

    exit_code = ExitCode.MODEL


class DownloadError(TextdropError):
    """A model download failed: no network, offline mode, a missing file on the hub, or no disk space."""

    exit_code = ExitCode.DOWNLOAD


class ExtractionError(TextdropError):
    """JSON mode: the model's answer is still not valid JSON for the schema after the repair and a retry."""

    exit_code = ExitCode.MODEL


class ServerRejectedError(TextdropError):
    """An inference server refused a request for good (HTTP 400, 404, 413, 422: an unknown model, a page
    larger than its context); retrying the same request would get the same answer."""

    exit_code = ExitCode.MODEL
