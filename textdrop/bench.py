"""``textdrop bench DIR``: accuracy, speed and memory of an engine on scans with ground truth.

For every image in DIR with a ``<stem>.gt.txt`` beside it: CER and WER against the ground truth, seconds
per page, the engine's load time and the peak resident memory of the process that ran it. CER/WER use
the normalisation of ``shared/eval/score.py``: Unicode NFKC, runs of whitespace folded to one space,
stripped, and case-folded for items flagged ``caseless`` in ``DIR/MANIFEST.tsv``.

Each engine runs in a fresh child process, so its peak RSS is its own; with ``--compare-raw`` RapidOCR's
unmodified pipeline (its defaults, lines joined row by row) runs on the same images in the same bench
run, and the table shows the ratio of median seconds per page. Figures are printed, never judged.
"""

from __future__ import annotations

import json
import multiprocessing
import re
import statistics
import sys
import time
import unicodedata
from importlib.util import find_spec
from pathlib import Path

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from textdrop.engine.documents.sources import SUPPORTED_SUFFIXES
from textdrop.engine.errors import ExitCode, UsageError


def normalise(text: str, fold: bool = False) -> str:
    """NFKC, whitespace runs to one space, stripped; case-folded when ``fold``."""
    text = re.sub(r"\s+", " ", unicodedata.normalize("NFKC", text)).strip()
    return text.casefold() if fold else text


def error_rates(truth: str, predicted: str) -> tuple[float, float]:
    """``(CER, WER)`` of ``predicted`` against ``truth`` (both already normalised); each may exceed 1."""
    from rapidfuzz.distance import Levenshtein  # the [bench] extra; run_bench checks it is installed

    cer = Levenshtein.distance(truth, predicted) / max(1, len(truth))
    words = truth.split()
    wer = Levenshtein.distance(words, predicted.split()) / max(1, len(words))
    return cer, wer


def find_items(directory: Path) -> list[tuple[Path, str, bool]]:
    """``(image, ground truth, caseless)`` for each image in ``directory`` with a ``<stem>.gt.txt``.

    Raises:
        UsageError: the folder does not exist or holds no such pair.
    """
    if not directory.is_dir():
        raise UsageError(f"{directory} is not a folder.")
    caseless: set[str] = set()
    manifest = directory / "MANIFEST.tsv"
    if manifest.exists():
        rows = [row.split("\t") for row in manifest.read_text(encoding="utf-8").splitlines() if row]
        if rows and "flags" in rows[0]:
            column = rows[0].index("flags")
            caseless = {r[0] for r in rows[1:] if len(r) > column and "caseless" in r[column]}
    items = []
    for image in sorted(directory.iterdir()):
        truth = image.with_name(image.stem + ".gt.txt")
        if image.suffix.lower() in SUPPORTED_SUFFIXES and truth.exists():
            items.append((image, truth.read_text(encoding="utf-8"), image.stem in caseless))
    if not items:
        raise UsageError(f"No image in {directory} has a <stem>.gt.txt ground-truth file beside it.")
    return items


def _peak_rss_mb() -> float:
    """Peak resident set size of this process in MiB."""
    if sys.platform == "win32":
        import psutil

        return psutil.Process().memory_info().peak_wset / 2**20
    import resource

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 2**10


def _measure(kind: str, engine: str, paths: list[str]) -> dict:
    """Child process body: load the engine, read every image, return texts, timings and peak RSS."""
    started = time.perf_counter()
    if kind == "raw":
        from textdrop.engine.ocr.rapid import load_raw, read_raw

        raw = load_raw()
        load_seconds = time.perf_counter() - started
        texts, seconds, pages = [], [], []
        for path in paths:
            began = time.perf_counter()
            texts.append(read_raw(raw, path))
            seconds.append(time.perf_counter() - began)
            pages.append(1)
    else:
        from textdrop.engine import recognize
        from textdrop.engine.registry import create_engine

        backend = create_engine(engine)
        backend.load()
        load_seconds = time.perf_counter() - started
        texts, seconds, pages = [], [], []
        for path in paths:
            result = recognize(path, engine=backend)
            texts.append(result.text)
            seconds.append(result.seconds)
            pages.append(len(result.pages))
        backend.close()
    per_page = [s / max(1, n) for s, n in zip(seconds, pages, strict=True)]
    return {
        "load_seconds": load_seconds,
        "texts": texts,
        "seconds_per_page": per_page,
        "peak_rss_mb": _peak_rss_mb(),
    }


def _run_child(kind: str, engine: str, paths: list[str]) -> dict:
    context = multiprocessing.get_context("spawn")
    with context.Pool(1) as pool:
        return pool.apply(_measure, (kind, engine, paths))


def _summary(items: list[tuple[Path, str, bool]], run: dict) -> dict:
    rows = []
    for (image, truth, fold), text, spp in zip(items, run["texts"], run["seconds_per_page"], strict=True):
        cer, wer = error_rates(normalise(truth, fold), normalise(text, fold))
        rows.append({"item": image.stem, "cer": cer, "wer": wer, "seconds_per_page": spp})
    return {
        "items": rows,
        "mean_cer": statistics.mean(r["cer"] for r in rows),
        "mean_wer": statistics.mean(r["wer"] for r in rows),
        "median_seconds_per_page": statistics.median(r["seconds_per_page"] for r in rows),
        "load_seconds": run["load_seconds"],
        "peak_rss_mb": run["peak_rss_mb"],
    }


def run_bench(
    directory: Path, *, engine: str = "rapid", compare_raw: bool = False, as_json: bool = False
) -> int:
    """Measure ``engine`` (and raw RapidOCR with ``compare_raw``) on ``directory``; print the figures.

    Returns:
        ``ExitCode.OK``; errors raise :class:`UsageError` (no ground truth, or rapidfuzz, the ``bench``
        extra, is not installed) or the engine's error.
    """
    if find_spec("rapidfuzz") is None:
        raise UsageError("textdrop bench needs rapidfuzz: pip install 'textdrop[bench]'")
    items = find_items(directory)
    paths = [str(image) for image, _, _ in items]
    console = Console(stderr=True)
    with console.status(f"Running {engine} on {len(items)} images…"):
        ours = _summary(items, _run_child("engine", engine, paths))
    report = {"engine": engine, "directory": str(directory), "textdrop": ours}
    if compare_raw:
        with console.status(f"Running raw RapidOCR on {len(items)} images…"):
            report["raw"] = _summary(items, _run_child("raw", engine, paths))
        report["time_ratio"] = ours["median_seconds_per_page"] / report["raw"]["median_seconds_per_page"]
    if as_json:
        print(json.dumps(report, indent=2))
    else:
        _print_report(report)
    return ExitCode.OK


def _print_report(report: dict) -> None:
    raw = report.get("raw")
    # names and paths are text, not rich markup (a file called "[b]scan.png" prints as it is)
    table = Table(title=escape(f"textdrop bench: {report['engine']} on {report['directory']}"))
    for header in ["item", "CER", "WER", "s/page"] + (["raw CER", "raw WER", "raw s/page"] if raw else []):
        table.add_column(header, justify="left" if header == "item" else "right")
    ours = report["textdrop"]
    for index, row in enumerate(ours["items"]):
        cells = [
            escape(row["item"]),
            f"{row['cer']:.3f}",
            f"{row['wer']:.3f}",
            f"{row['seconds_per_page']:.2f}",
        ]
        if raw:
            other = raw["items"][index]
            cells += [f"{other['cer']:.3f}", f"{other['wer']:.3f}", f"{other['seconds_per_page']:.2f}"]
        table.add_row(*cells)
    console = Console(width=120)
    console.print(table)
    for name, figures in [(report["engine"], ours)] + ([("raw RapidOCR", raw)] if raw else []):
        console.print(
            f"{escape(name)}: mean CER {figures['mean_cer']:.3f}  mean WER {figures['mean_wer']:.3f}  "
            f"median s/page {figures['median_seconds_per_page']:.2f}  "
            f"model load {figures['load_seconds']:.2f} s  peak RSS {figures['peak_rss_mb']:.0f} MB"
        )
    if raw:
        console.print(
            f"time ratio (median s/page, {escape(report['engine'])} / raw): {report['time_ratio']:.2f}"
        )
