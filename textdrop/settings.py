"""The configuration file model, composed of the subsystems' own option models, and textdrop's folders.

One TOML file, ``config.toml`` in the platformdirs config folder, validated by pydantic. Setting the
environment variable ``TEXTDROP_HOME`` moves every folder textdrop writes (config, data, logs) under it,
which the tests use. Example::

    engine = "auto"          # or "rapid", "llama:granite-docling-258m", "openai:qwen2.5vl:3b"

    [recognize]
    mode = "markdown"        # VLM engines: "markdown", "text" or "json"
    languages = ["ru", "en"] # language packs for other scripts: textdrop models list
    pdf_text = "auto"        # PDF pages: their text layer when usable ("layer": only, "ocr": never)

    [llama]
    flash_attn = true        # n_ctx: sized from page_size unless set

    [mlx]
    page_size = 1288         # longest side of the page images (default: the model family's)

    [openai]
    preset = "ollama"

    [sources]
    pdf_dpi = 300
    max_pages = 1000

    [sidecar]
    template = "{stem}.ocr.{ext}"

    [watch]
    rescan_minutes = 10

    [[folders]]
    path = "~/Scans"
    settle_seconds = 5
    polling = true          # a network share
    outputs = ["md", "pdf"] # a searchable PDF beside each scan too
    languages = ["de", "el"]

    [[folders]]
    path = "~/Pictures/Screenshots"
    patterns = ["*.png"]

    [server]                 # textdrop serve, and the tray app's HTTP API when enabled
    enabled = true
    port = 8765
"""

from __future__ import annotations

import os
import tempfile
import tomllib
from collections.abc import Callable
from pathlib import Path

import platformdirs
import tomlkit
import tomlkit.exceptions
import tomlkit.items
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from textdrop.desktop.options import DesktopOptions
from textdrop.engine.documents.sidecar import SidecarOptions
from textdrop.engine.documents.sources import SourceLimits
from textdrop.engine.errors import ConfigError
from textdrop.engine.registry import RecognizeOptions
from textdrop.engine.vlm.llama_cpp import LlamaOptions
from textdrop.engine.vlm.mlx_vlm import MlxOptions
from textdrop.engine.vlm.openai_api import OpenAIOptions
from textdrop.server.options import ServerOptions
from textdrop.watcher.service import FolderOptions, WatchOptions

APP_NAME = "textdrop"


class Settings(BaseModel):
    """Everything in ``config.toml``; each table is a subsystem's own option model."""

    model_config = ConfigDict(extra="forbid")

    engine: str = Field(
        "auto",
        description="Engine name, optionally with ':model' (a catalogue id, a local path or a server's "
        "model), or 'auto' for the best one available here.",
    )
    recognize: RecognizeOptions = Field(default_factory=RecognizeOptions)
    llama: LlamaOptions = Field(default_factory=LlamaOptions)
    mlx: MlxOptions = Field(default_factory=MlxOptions)
    openai: OpenAIOptions = Field(default_factory=OpenAIOptions)
    sources: SourceLimits = Field(default_factory=SourceLimits)
    sidecar: SidecarOptions = Field(default_factory=SidecarOptions)
    watch: WatchOptions = Field(default_factory=WatchOptions)
    folders: list[FolderOptions] = Field(default_factory=list, description="The watched folders.")
    desktop: DesktopOptions = Field(default_factory=DesktopOptions)
    server: ServerOptions = Field(default_factory=ServerOptions)

    @field_validator("recognize")
    @classmethod
    def _no_per_call_options(cls, value: RecognizeOptions) -> RecognizeOptions:
        if value.pages is not None or value.box is not None:
            raise ValueError("pages and box are chosen per document (textdrop ocr --box, the API), not here")
        return value

    def backends(self) -> dict[str, BaseModel]:
        """Backend settings by engine name, as :func:`create_engine` and :class:`JobQueue` take them."""
        return {"llama": self.llama, "mlx": self.mlx, "openai": self.openai}


def _home() -> Path | None:
    home = os.environ.get("TEXTDROP_HOME")
    return Path(home) if home else None


def config_dir() -> Path:
    """Folder of ``config.toml``: ``$TEXTDROP_HOME/config`` or the platform's user config folder."""
    home = _home()
    return home / "config" if home else Path(platformdirs.user_config_dir(APP_NAME, appauthor=False))


def data_dir() -> Path:
    """Folder for textdrop's data (the watcher's ledger): ``$TEXTDROP_HOME/data`` or the platform's."""
    home = _home()
    return home / "data" if home else Path(platformdirs.user_data_dir(APP_NAME, appauthor=False))


def log_dir() -> Path:
    """Folder for rotating log files: ``$TEXTDROP_HOME/logs`` or the platform's user log folder."""
    home = _home()
    return home / "logs" if home else Path(platformdirs.user_log_dir(APP_NAME, appauthor=False))


def config_path() -> Path:
    """Path of the configuration file (it need not exist)."""
    return config_dir() / "config.toml"


def ledger_path() -> Path:
    """Path of the watcher's SQLite ledger (see :mod:`textdrop.watcher.ledger`)."""
    return data_dir() / "ledger.sqlite3"


def watch_lock_path() -> Path:
    """The lock file that makes one folder watcher per user (``textdrop watch`` or the tray app)."""
    return data_dir() / "watch.lock"


def load_settings(path: Path | None = None) -> Settings:
    """Read and validate the configuration file; defaults when it does not exist.

    Raises:
        ConfigError: the file is not valid TOML or a value fails validation (the message names it).
    """
    path = path or config_path()
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return Settings()
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"Cannot read the configuration file {path}: {exc}. Fix or delete it.") from exc
    return _validate(data, path)


def _validate(data: dict, path: Path) -> Settings:
    try:
        return Settings.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in exc.errors())
        raise ConfigError(f"Invalid configuration in {path}: {problems}.") from exc


def edit_settings(change: Callable[[tomlkit.TOMLDocument], None], path: Path | None = None) -> Settings:
    """Apply ``change`` to the configuration file, keeping its comments and layout, and save it.

    The changed file is validated before it is written (atomically: a temp file renamed into place), so a
    change that makes the configuration invalid leaves the file as it was.

    Raises:
        ConfigError: the current file is not valid TOML, or the changed one fails validation.
    """
    path = path or config_path()
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        text = ""
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"Cannot read the configuration file {path}: {exc}. Fix or delete it.") from exc
    try:
        document = tomlkit.parse(text)
    except tomlkit.exceptions.TOMLKitError as exc:
        raise ConfigError(f"Cannot read the configuration file {path}: {exc}. Fix or delete it.") from exc
    change(document)
    text = tomlkit.dumps(document)
    settings = _validate(tomllib.loads(text), path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temp = tempfile.mkstemp(dir=path.parent, prefix=".config-", suffix=".tmp")
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as file:
            file.write(text)
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise
    return settings


def folder_table(folder: FolderOptions) -> tomlkit.items.Table:
    """The ``[[folders]]`` table for ``folder``: its path and the options that differ from the defaults."""
    table = tomlkit.table()
    table["path"] = str(folder.path)
    for key, value in folder.model_dump(mode="json", exclude={"path"}, exclude_defaults=True).items():
        table[key] = value
    return table
