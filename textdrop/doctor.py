"""``textdrop doctor``: which backends are installed, which accelerator they can use, which models are
downloaded (with their licences), which catalogue models a backend cannot run and why, and what ``auto``
picks here and why."""

from __future__ import annotations

import json
import os
import platform
import sys
from importlib.metadata import PackageNotFoundError, version
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from textdrop import __version__
from textdrop.engine.errors import ExitCode
from textdrop.engine.registry import engine_class

PACKAGES = {"rapid": "rapidocr", "llama": "llama-cpp-python", "mlx": "mlx-vlm", "openai": "httpx"}
"""The distribution that provides each backend's runtime (its version is reported)."""


def _version(package: str) -> str | None:
    try:
        return version(package)
    except PackageNotFoundError:
        return None


def _accelerator(name: str) -> str:
    cls = engine_class(name)
    probe = getattr(cls, "accelerator", None)
    if probe is None or not cls.is_available():
        return "-"
    try:
        return probe() or "CPU only"
    except Exception as exc:  # a broken install must not break the report
        return f"error: {exc}"


def report() -> dict[str, Any]:
    """Everything ``doctor`` prints, as a JSON-serialisable dict."""
    from huggingface_hub import constants

    from textdrop.engine.models.catalog import BACKENDS, CATALOG
    from textdrop.engine.models.download import is_downloaded
    from textdrop.engine.registry import choose

    backends = []
    for name, package in PACKAGES.items():
        cls = engine_class(name)
        installed = cls.is_available()
        backends.append(
            {
                "engine": name,
                "installed": installed,
                "version": _version(package),
                "accelerator": _accelerator(name),
                "hint": "" if installed else cls.install_hint,
            }
        )
    downloaded = [
        {"model": entry.id, "backend": backend, "licence": entry.licence_name}
        for entry in CATALOG
        for backend in entry.backends
        if is_downloaded(entry, backend)
    ]
    not_offered = [
        {"model": entry.id, "backend": backend, "reason": reason}
        for entry in CATALOG
        for backend in BACKENDS
        if (reason := entry.why_not(backend))
    ]
    choice = choose()
    return {
        "textdrop": __version__,
        "python": sys.version.split()[0],
        "platform": f"{platform.system()} {platform.machine()}",
        "backends": backends,
        "hub_cache": str(constants.HF_HUB_CACHE),
        "hub_offline": bool(constants.HF_HUB_OFFLINE),
        "hub_endpoint": os.environ.get("HF_ENDPOINT") or constants.ENDPOINT,
        "downloaded": downloaded,
        "not_offered": not_offered,
        "auto": choice.spec,
        "auto_reasons": choice.reasons,
    }


def run_doctor(as_json: bool = False) -> int:
    """Print the report (a table, or JSON with ``as_json``); returns :attr:`ExitCode.OK`."""
    data = report()
    if as_json:
        print(json.dumps(data, indent=2))
        return ExitCode.OK
    out = Console(highlight=False)
    # Every value is escaped: install hints such as "pip install 'textdrop[llama]'" are not markup.
    out.print(escape(f"textdrop {data['textdrop']} · Python {data['python']} · {data['platform']}"))
    table = Table("engine", "installed", "version", "accelerator", "how to install", box=None)
    for row in data["backends"]:
        cells = (
            row["engine"],
            "yes" if row["installed"] else "no",
            row["version"] or "-",
            row["accelerator"],
        )
        table.add_row(*(escape(cell) for cell in (*cells, row["hint"])))
    out.print(table)
    offline = " (offline)" if data["hub_offline"] else ""
    out.print(
        escape(f"\nModels: Hugging Face cache {data['hub_cache']}{offline}, endpoint {data['hub_endpoint']}")
    )
    for item in data["downloaded"] or [{"model": "none downloaded (textdrop models list)", "backend": "-"}]:
        licence = f"  {item['licence']}" if item.get("licence") else ""
        out.print(escape(f"  {item['model']}  [{item['backend']}]{licence}"))
    if data["not_offered"]:
        out.print("Catalogue models not offered on a backend:")
        for item in data["not_offered"]:
            out.print(escape(f"  {item['model']}  [{item['backend']}]: {item['reason']}"))
    out.print(f"\nauto → [bold]{escape(data['auto'])}[/bold]")
    for reason in data["auto_reasons"]:
        out.print(escape(f"  {reason}"))
    return ExitCode.OK
