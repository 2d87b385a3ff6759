"""Benchmark of ``textdrop watch``: throughput against ``textdrop ocr``, pickup latency, memory in a burst.

Run from the repository root, with the virtual environment that has textdrop installed::

    .venv/bin/python benchmarks/watch.py              # all: 3 runs, 10 latency files, 1000-file burst
    .venv/bin/python benchmarks/watch.py --runs 1 --latency-files 3 --burst 50  # a quick look
    .venv/bin/python benchmarks/watch.py --skip-burst --json

It drives the real ``textdrop`` executable (the one next to ``sys.executable``) as a subprocess, with the
configured default engine (the embedded one), on the first 20 images (by name) of ``--scans`` (default
``../shared/eval/dev``). Everything it writes lies in a temporary folder, and every subprocess gets a
fresh ``TEXTDROP_HOME`` there, so the user's configuration, ledger and logs are never touched.

Three figures, each printed beside its goal (figures only: no pass/fail):

1. **Throughput ratio** (goal >= 0.95): the wall-clock time of the whole ``textdrop ocr FOLDER --force
   --out-dir DIR`` command and of the whole ``textdrop watch FOLDER --once`` command (fresh home, so an
   empty ledger) on fresh copies of the same scans; ratio = ocr seconds / watch seconds, i.e. watch's
   throughput over ocr's. ``watch --once`` takes a file only once it has been quiet for the settle time,
   counted from its mtime/ctime; a user's backlog is old files, so after copying the scans the script
   waits a little over the settle time before starting the clock, for both commands alike. The runs
   alternate which command goes first; the medians over ``--runs`` are quoted.
2. **Latency** (goal <= 200 ms): the delay from a file's last write to its job starting, less the settle
   time. A ``textdrop watch FOLDER`` runs on an empty folder; once it prints "Watching" (its engine is
   loaded by then), each of ``--latency-files`` scans is written under its final name in 4 chunks 50 ms
   apart (flush and fsync each), and the time after the file is closed is noted. The ledger
   (``$TEXTDROP_HOME/data/ledger.sqlite3``, read-only) is polled every 20 ms for the file's ``started``
   stamp (Unix time, written by the watcher when the job begins); delay = started - last write - settle.
   The next file is written only once this one is done, so the queue is always empty. Median, min, max.
3. **Memory** (goal <= 1.2x): the watcher's resident set size (the process and its children, sampled
   every 0.1 s with psutil) idle with the engine loaded (median over 3 s) and at its peak while it reads
   a burst of ``--burst`` small images dropped at once: distinct 320x96 px crops of the scans, each with
   some ink in it, written as PNG to a staging folder on the same filesystem and then renamed into the
   watched folder one after another as fast as possible. Sampling lasts until the ledger records every
   file done or failed (or ``--burst-timeout``); also quoted: the time that took (from the first rename,
   so it includes one settle time), files per second, and the RSS idle again for 3 s after the burst.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import io
import json
import os
import random
import shutil
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
from PIL import Image
from rich.console import Console
from rich.table import Table

from textdrop.watcher.settle import DEFAULT_SETTLE_SECONDS

REPO = Path(__file__).resolve().parent.parent
DEFAULT_SCANS = REPO.parent / "shared" / "eval" / "dev"
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff")
SCAN_COUNT = 20

SETTLE_MARGIN = 0.5
"""Seconds waited beyond the settle time after copying files, so that they count as an old backlog."""
CHUNKS = 4
CHUNK_PAUSE = 0.05
POLL = 0.02
"""Seconds between two looks at the ledger while waiting for a job to start."""
SAMPLE_EVERY = 0.1
IDLE_SECONDS = 3.0
CROP_SIZE = (320, 96)
STARTUP_TIMEOUT = 180.0
FILE_TIMEOUT = 300.0
STOP_TIMEOUT = 60.0

GOAL_RATIO = 0.95
GOAL_LATENCY_MS = 200.0
GOAL_MEMORY = 1.2

TEXTDROP = Path(sys.executable).with_name("textdrop")
err = Console(stderr=True, highlight=False, soft_wrap=True)


def progress(message: str) -> None:
    err.print(f"[dim]·[/dim] {message}")


def warn(message: str) -> None:
    err.print(f"[yellow]warning:[/yellow] {message}")


# ----- helpers ---------------------------------------------------------------------------------------------


def pick_scans(folder: Path, count: int = SCAN_COUNT) -> list[Path]:
    """The first ``count`` images in ``folder`` by name."""
    if not folder.is_dir():
        sys.exit(f"No scans folder {folder}; name one with --scans DIR.")
    scans = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())[:count]
    if not scans:
        sys.exit(f"No images ({', '.join(IMAGE_SUFFIXES)}) in {folder}.")
    if len(scans) < count:
        warn(f"only {len(scans)} images in {folder}, not {count}")
    return scans


def environment(home: Path) -> dict[str, str]:
    """The environment of a textdrop subprocess: ours, with its own fresh ``TEXTDROP_HOME``."""
    home.mkdir(parents=True, exist_ok=True)
    return {**os.environ, "TEXTDROP_HOME": str(home)}


def copy_scans(scans: list[Path], folder: Path) -> None:
    folder.mkdir(parents=True)
    for scan in scans:
        shutil.copyfile(scan, folder / scan.name)


def count_sidecars(folder: Path) -> int:
    return sum(1 for p in folder.iterdir() if p.name.endswith(".md"))


def rss_bytes(process: psutil.Process) -> int:
    """Resident set size of ``process`` and all its children, in bytes (0 once it has gone)."""
    try:
        members = [process, *process.children(recursive=True)]
    except psutil.Error:
        return 0
    total = 0
    for member in members:
        with contextlib.suppress(psutil.Error):
            total += member.memory_info().rss
    return total


def mb(value: float) -> float:
    return value / 2**20


class LedgerReader:
    """Read-only look at the watcher's ledger, opened once the file exists."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._conn: sqlite3.Connection | None = None

    def _connection(self) -> sqlite3.Connection | None:
        if self._conn is None and self.path.exists():
            try:
                self._conn = sqlite3.connect(f"{self.path.as_uri()}?mode=ro", uri=True, timeout=5)
            except sqlite3.Error:
                return None
        return self._conn

    def row(self, path: Path) -> tuple[float | None, str] | None:
        """``(started, status)`` of the newest version of ``path``, or ``None`` when there is none yet."""
        conn = self._connection()
        if conn is None:
            return None
        names = (os.path.abspath(path), os.path.realpath(path))
        try:
            rows = conn.execute(
                "SELECT started, status FROM files WHERE path IN (?, ?) ORDER BY id DESC LIMIT 1", names
            ).fetchall()
        except sqlite3.OperationalError:  # not created yet, or busy for a moment
            return None
        return (rows[0][0], rows[0][1]) if rows else None

    def finished(self) -> int:
        """Rows done or failed."""
        conn = self._connection()
        if conn is None:
            return 0
        try:
            (count,) = conn.execute(
                "SELECT COUNT(*) FROM files WHERE status IN ('done', 'failed')"
            ).fetchone()
        except sqlite3.OperationalError:
            return 0
        return int(count)

    def failed(self) -> int:
        conn = self._connection()
        if conn is None:
            return 0
        try:
            (count,) = conn.execute("SELECT COUNT(*) FROM files WHERE status = 'failed'").fetchone()
        except sqlite3.OperationalError:
            return 0
        return int(count)

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None


class Watcher:
    """A ``textdrop watch FOLDER`` subprocess whose stderr is read by a thread (so it never blocks)."""

    def __init__(self, folder: Path, home: Path, settle: float) -> None:
        self.home = home
        self.lines: list[str] = []
        self.ready = threading.Event()
        self.process = subprocess.Popen(
            [str(TEXTDROP), "watch", str(folder), "--settle", f"{settle:g}"],
            env=environment(home),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            encoding="utf-8",
            errors="replace",
        )
        self.ps = psutil.Process(self.process.pid)
        self._reader = threading.Thread(target=self._read, name="watcher-stderr", daemon=True)
        self._reader.start()
        self.ledger = LedgerReader(home / "data" / "ledger.sqlite3")

    def _read(self) -> None:
        assert self.process.stderr is not None
        for line in self.process.stderr:
            self.lines.append(line.rstrip("\n"))
            if line.startswith("Watching"):
                self.ready.set()

    def wait_ready(self, timeout: float = STARTUP_TIMEOUT) -> None:
        """Wait for "Watching …" (printed once the engine has loaded and the folder is watched)."""
        deadline = time.monotonic() + timeout
        while not self.ready.wait(0.1):
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                tail = "\n".join(self.lines[-20:])
                raise RuntimeError(f"textdrop watch did not start (exit code {self.process.poll()}):\n{tail}")

    def stop(self) -> int:
        """SIGTERM, then wait (a kill after :data:`STOP_TIMEOUT`); returns the exit code."""
        self.ledger.close()
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                warn(f"the watcher did not stop within {STOP_TIMEOUT:g} s of SIGTERM; killing it")
                self.process.kill()
                self.process.wait()
        self._reader.join(5)
        return self.process.returncode


@contextlib.contextmanager
def watching(folder: Path, home: Path, settle: float) -> Iterator[Watcher]:
    watcher = Watcher(folder, home, settle)
    try:
        yield watcher
    finally:
        watcher.stop()


class Sampler:
    """Samples a process tree's RSS every :data:`SAMPLE_EVERY` seconds in a thread."""

    def __init__(self, process: psutil.Process) -> None:
        self.process = process
        self.samples: list[int] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="rss-sampler", daemon=True)

    def _run(self) -> None:
        while True:
            value = rss_bytes(self.process)
            if value:
                self.samples.append(value)
            if self._stop.wait(SAMPLE_EVERY):
                return

    def __enter__(self) -> Sampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


# ----- 1. throughput ---------------------------------------------------------------------------------------


def time_command(kind: str, scans: list[Path], root: Path, settle: float) -> tuple[float, int]:
    """Run ``ocr`` or ``watch --once`` on a fresh copy of the scans; returns (seconds, sidecars)."""
    folder = root / "in"
    copy_scans(scans, folder)
    env = environment(root / "home")
    if kind == "ocr":
        out = root / "out"
        out.mkdir()
        command = [str(TEXTDROP), "ocr", str(folder), "--force", "--out-dir", str(out)]
    else:
        out = folder
        command = [str(TEXTDROP), "watch", str(folder), "--once", "--settle", f"{settle:g}"]
    time.sleep(settle + SETTLE_MARGIN)  # the copies are now an old backlog, for both commands alike
    started = time.perf_counter()
    done = subprocess.run(command, env=env, capture_output=True, text=True, errors="replace", check=False)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        tail = "\n".join(done.stderr.splitlines()[-10:])
        warn(f"textdrop {kind} exited with {done.returncode}:\n{tail}")
    return seconds, count_sidecars(out)


def bench_throughput(scans: list[Path], tmp: Path, runs: int, settle: float) -> dict[str, Any]:
    times: dict[str, list[float]] = {"ocr": [], "watch": []}
    for run in range(runs):
        order = ("ocr", "watch") if run % 2 == 0 else ("watch", "ocr")
        for kind in order:
            seconds, sidecars = time_command(kind, scans, tmp / f"throughput-{run}-{kind}", settle)
            times[kind].append(seconds)
            label = "ocr" if kind == "ocr" else "watch --once"
            progress(f"run {run + 1}/{runs}: {label}: {seconds:.1f} s, {sidecars} sidecars")
            if sidecars != len(scans):
                warn(f"textdrop {label} wrote {sidecars} sidecars for {len(scans)} scans")
    ocr = statistics.median(times["ocr"])
    watch = statistics.median(times["watch"])
    return {
        "files": len(scans),
        "runs": runs,
        "ocr_seconds": times["ocr"],
        "watch_seconds": times["watch"],
        "ocr_median_s": ocr,
        "watch_median_s": watch,
        "ocr_files_per_min": len(scans) / ocr * 60,
        "watch_files_per_min": len(scans) / watch * 60,
        "ratio": ocr / watch,
    }


# ----- 2. latency ------------------------------------------------------------------------------------------


def write_in_chunks(source: Path, target: Path) -> float:
    """Write ``source``'s bytes to ``target`` in :data:`CHUNKS` pieces; the Unix time once it is closed."""
    data = source.read_bytes()
    size = -(-len(data) // CHUNKS)
    with open(target, "wb") as file:
        for index in range(CHUNKS):
            if index:
                time.sleep(CHUNK_PAUSE)
            file.write(data[index * size : (index + 1) * size])
            file.flush()
            os.fsync(file.fileno())
    return time.time()


def bench_latency(scans: list[Path], tmp: Path, count: int, settle: float) -> dict[str, Any]:
    if count > len(scans):
        warn(
            f"--latency-files {count} is more than the {len(scans)} scans (identical content would be reused)"
        )
        count = len(scans)
    folder = tmp / "latency" / "in"
    folder.mkdir(parents=True)
    delays: list[float] = []
    with watching(folder, tmp / "latency" / "home", settle) as watcher:
        started_at = time.perf_counter()
        watcher.wait_ready()
        progress(f"latency: watcher ready after {time.perf_counter() - started_at:.1f} s")
        for scan in scans[:count]:
            target = folder / scan.name
            last_write = write_in_chunks(scan, target)
            deadline = time.monotonic() + FILE_TIMEOUT
            job_started: float | None = None
            status = "?"
            while time.monotonic() < deadline:
                row = watcher.ledger.row(target)
                if row is not None:
                    job_started = row[0] if row[0] is not None else job_started
                    status = row[1]
                    if status in ("done", "failed"):
                        break
                if watcher.process.poll() is not None:
                    break
                time.sleep(POLL)
            if job_started is None:
                warn(f"{scan.name}: no job start recorded (status {status})")
                continue
            delay = job_started - last_write - settle
            delays.append(delay)
            progress(f"latency: {scan.name}: {delay * 1000:.0f} ms after the settle time ({status})")
        exit_code = watcher.stop()
    progress(f"latency: watcher exit code {exit_code}")
    if not delays:
        return {"files": 0, "exit_code": exit_code}
    return {
        "files": len(delays),
        "settle_s": settle,
        "delays_ms": [d * 1000 for d in delays],
        "median_ms": statistics.median(delays) * 1000,
        "min_ms": min(delays) * 1000,
        "max_ms": max(delays) * 1000,
        "exit_code": exit_code,
    }


# ----- 3. memory in a burst --------------------------------------------------------------------------------


def make_crops(scans: list[Path], count: int, staging: Path, seed: int = 0) -> list[Path]:
    """``count`` distinct PNG crops of the scans, each with some ink in it, written to ``staging``."""
    staging.mkdir(parents=True)
    rng = random.Random(seed)
    images = []
    for scan in scans:
        with Image.open(scan) as image:
            gray = image.convert("L")
        width, height = CROP_SIZE
        if gray.width < width or gray.height < height:
            scale = max(width / gray.width, height / gray.height)
            gray = gray.resize((round(gray.width * scale) + 1, round(gray.height * scale) + 1))
        images.append(gray)
    digests: set[str] = set()
    paths = []
    attempts = 0
    while len(paths) < count:
        attempts += 1
        image = images[len(paths) % len(images)] if attempts < count * 20 else rng.choice(images)
        left = rng.randrange(image.width - CROP_SIZE[0] + 1)
        top = rng.randrange(image.height - CROP_SIZE[1] + 1)
        crop = image.crop((left, top, left + CROP_SIZE[0], top + CROP_SIZE[1]))
        dark = sum(crop.histogram()[:128]) / (CROP_SIZE[0] * CROP_SIZE[1])
        if not 0.02 <= dark <= 0.5 and attempts < count * 20:
            continue  # blank margin or a solid block: no text to read
        buffer = io.BytesIO()
        crop.save(buffer, "PNG")
        data = buffer.getvalue()
        digest = hashlib.sha256(data).hexdigest()
        if digest in digests:
            continue
        digests.add(digest)
        path = staging / f"crop_{len(paths):05d}.png"
        path.write_bytes(data)
        paths.append(path)
    return paths


def bench_burst(scans: list[Path], tmp: Path, count: int, settle: float, timeout: float) -> dict[str, Any]:
    staging = tmp / "burst" / "staging"
    folder = tmp / "burst" / "in"
    folder.mkdir(parents=True)
    crops = make_crops(scans, count, staging)
    progress(f"burst: {len(crops)} crops of {CROP_SIZE[0]}x{CROP_SIZE[1]} px ready")
    with watching(folder, tmp / "burst" / "home", settle) as watcher:
        watcher.wait_ready()
        with Sampler(watcher.ps) as idle_sampler:
            time.sleep(IDLE_SECONDS)
        idle = statistics.median(idle_sampler.samples)
        progress(f"burst: idle {mb(idle):.0f} MB; dropping {count} files")
        finished = 0
        with Sampler(watcher.ps) as sampler:
            dropped = time.perf_counter()
            for crop in crops:
                os.rename(crop, folder / crop.name)
            rename_seconds = time.perf_counter() - dropped
            deadline = time.monotonic() + timeout
            last_report = time.monotonic()
            while time.monotonic() < deadline and watcher.process.poll() is None:
                finished = watcher.ledger.finished()
                if finished >= count:
                    break
                if time.monotonic() - last_report >= 15:
                    last_report = time.monotonic()
                    peak_now = mb(max(sampler.samples, default=0))
                    progress(f"burst: {finished}/{count} read, peak so far {peak_now:.0f} MB")
                time.sleep(0.2)
            elapsed = time.perf_counter() - dropped
        failed = watcher.ledger.failed()
        with Sampler(watcher.ps) as after_sampler:
            time.sleep(IDLE_SECONDS)
        after = statistics.median(after_sampler.samples)
        exit_code = watcher.stop()
    if finished < count:
        warn(f"burst: only {finished} of {count} files read before the timeout or exit")
    if failed:
        warn(f"burst: {failed} files failed")
    peak = max(sampler.samples)
    progress(
        f"burst: {finished} read in {elapsed:.1f} s, peak {mb(peak):.0f} MB; watcher exit code {exit_code}"
    )
    return {
        "files": count,
        "finished": finished,
        "failed": failed,
        "idle_mb": mb(idle),
        "peak_mb": mb(peak),
        "ratio": peak / idle,
        "idle_after_mb": mb(after),
        "rename_seconds": rename_seconds,
        "elapsed_s": elapsed,
        "files_per_s": finished / elapsed,
        "exit_code": exit_code,
    }


# ----- report ----------------------------------------------------------------------------------------------


def summary(figures: dict[str, Any]) -> Table:
    table = Table("figure", "value", "goal", title="textdrop watch benchmark")
    if throughput := figures.get("throughput"):
        files, runs = throughput["files"], throughput["runs"]
        table.add_row(
            f"textdrop ocr, {files} scans (median of {runs})",
            f"{throughput['ocr_median_s']:.1f} s  ({throughput['ocr_files_per_min']:.1f} files/min)",
            "",
        )
        table.add_row(
            f"textdrop watch --once, {files} scans (median of {runs})",
            f"{throughput['watch_median_s']:.1f} s  ({throughput['watch_files_per_min']:.1f} files/min)",
            "",
        )
        table.add_row("throughput ratio watch / ocr", f"{throughput['ratio']:.3f}", f">= {GOAL_RATIO}")
    if latency := figures.get("latency"):
        if latency.get("files"):
            table.add_row(
                f"latency beyond the {latency['settle_s']:g} s settle, median of {latency['files']}",
                f"{latency['median_ms']:.0f} ms  (min {latency['min_ms']:.0f}, max {latency['max_ms']:.0f})",
                f"<= {GOAL_LATENCY_MS:.0f} ms",
            )
        else:
            table.add_row(
                "latency beyond the settle time", "no job start seen", f"<= {GOAL_LATENCY_MS:.0f} ms"
            )
    if burst := figures.get("burst"):
        table.add_row("RSS idle, engine loaded (median)", f"{burst['idle_mb']:.0f} MB", "")
        table.add_row(f"RSS peak during a {burst['files']}-file burst", f"{burst['peak_mb']:.0f} MB", "")
        table.add_row("memory ratio peak / idle", f"{burst['ratio']:.2f}x", f"<= {GOAL_MEMORY}x")
        table.add_row("RSS idle again after the burst (median)", f"{burst['idle_after_mb']:.0f} MB", "")
        table.add_row(
            "burst read",
            f"{burst['finished']}/{burst['files']} in {burst['elapsed_s']:.1f} s  "
            f"({burst['files_per_s']:.2f} files/s)",
            "",
        )
    return table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scans", type=Path, default=DEFAULT_SCANS, help="folder of scans (first 20 used)")
    parser.add_argument("--runs", type=int, default=3, help="throughput runs of each command (default 3)")
    parser.add_argument("--latency-files", type=int, default=10, help="files for the latency (default 10)")
    parser.add_argument("--burst", type=int, default=1000, help="files dropped at once (default 1000)")
    parser.add_argument("--burst-timeout", type=float, default=900, help="seconds the burst may take (900)")
    parser.add_argument("--skip-throughput", action="store_true", help="do not measure throughput")
    parser.add_argument("--skip-latency", action="store_true", help="do not measure latency")
    parser.add_argument("--skip-burst", action="store_true", help="do not measure memory in a burst")
    parser.add_argument("--json", action="store_true", help="also print every figure as one JSON object")
    args = parser.parse_args()
    if not TEXTDROP.exists():
        sys.exit(f"No textdrop executable at {TEXTDROP}: run this with the Python of textdrop's venv.")
    if args.runs < 1 or args.latency_files < 1 or args.burst < 1:
        sys.exit("--runs, --latency-files and --burst must be 1 or more.")
    settle = DEFAULT_SETTLE_SECONDS
    scans = pick_scans(args.scans)
    progress(f"{len(scans)} scans from {args.scans}; settle time {settle:g} s; textdrop at {TEXTDROP}")
    figures: dict[str, Any] = {"scans": str(args.scans), "settle_s": settle}
    with tempfile.TemporaryDirectory(prefix="textdrop-bench-watch-") as temp:
        tmp = Path(temp)
        if not args.skip_throughput:
            figures["throughput"] = bench_throughput(scans, tmp, args.runs, settle)
        if not args.skip_latency:
            figures["latency"] = bench_latency(scans, tmp, args.latency_files, settle)
        if not args.skip_burst:
            figures["burst"] = bench_burst(scans, tmp, args.burst, settle, args.burst_timeout)
    out = Console(highlight=False, width=None if sys.stdout.isatty() else 120)  # no wrapping when piped
    out.print(summary(figures))
    if args.json:
        print(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
