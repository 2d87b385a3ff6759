"""The HTTP API's cost: ``textdrop serve`` against calling the engine directly, same image, same run.

- **direct**: ``textdrop.engine.recognize(image_bytes, engine=loaded_engine)`` in this process, one call
  after another (an engine runs one page at a time, so this is the most any caller gets out of it).
- **serve**: a real ``textdrop serve`` process on a free loopback port, same engine, and 1, 4 and 16
  client threads each posting the image as a multipart upload (``POST /v1/ocr``) and waiting for the
  result; requests/s is completed requests ÷ wall time of the batch.

``overhead`` is the median latency of one client minus the median direct call; ``beyond OCR`` is the
median, per request, of the client's latency minus the ``seconds`` recognition took inside the server
(upload, pre-flight, queue hand-off, JSON; queueing too with several clients), which drifts less with
the shared machine's load. The direct calls run just before and after each server block (never at the
same time), and each block is compared with its own direct calls, so drifting load hits both sides alike.
Goals (issue 18): overhead <= 20 ms median, requests/s >= 0.9 × direct at every concurrency.

    .venv/bin/python benchmarks/serve.py [--image assets/samples/tess_phototest.tif] [--requests 12]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from textdrop.engine import recognize  # noqa: E402
from textdrop.engine.registry import Engine, create_engine  # noqa: E402

CONCURRENCY = (1, 4, 16)


def direct(engine: Engine, data: bytes, calls: int) -> list[float]:
    """Seconds of each of ``calls`` direct recognitions on the loaded ``engine``."""
    times = []
    for _ in range(calls):
        started = time.perf_counter()
        recognize(data, engine=engine)
        times.append(time.perf_counter() - started)
    return times


def start_server(engine_name: str, home: str) -> tuple[subprocess.Popen[str], str]:
    """``textdrop serve --port 0`` in a process of its own; returns it and its URL once it listens."""
    env = {**os.environ, "TEXTDROP_HOME": home, "PYTHONPATH": str(ROOT)}
    env.pop("TEXTDROP_TOKEN", None)
    process = subprocess.Popen(
        [sys.executable, "-m", "textdrop", "serve", "--port", "0", "-e", engine_name],
        cwd=ROOT,
        env=env,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stderr is not None
    match = re.search(r"listening on (http://\S+) ", process.stderr.readline())
    if match is None:
        process.kill()
        raise SystemExit("textdrop serve did not start")
    url = match.group(1)
    deadline = time.monotonic() + 120
    while httpx.get(f"{url}/v1/health").json()["engine_state"] != "ready":
        if time.monotonic() > deadline:
            raise SystemExit("the server's engine did not load")
        time.sleep(0.1)
    return process, url


def load(client: httpx.Client, data: bytes, clients: int, requests: int) -> dict[str, Any]:
    """``requests`` uploads spread over ``clients`` threads; latencies and in-server overheads."""
    latencies: list[float] = []
    overheads: list[float] = []
    lock = threading.Lock()
    todo = iter(range(requests))

    def worker() -> None:
        while True:
            with lock:
                if next(todo, None) is None:
                    return
            started = time.perf_counter()
            response = client.post("/v1/ocr", files={"file": ("page", data)})
            latency = time.perf_counter() - started
            response.raise_for_status()
            with lock:
                latencies.append(latency)
                overheads.append(latency - response.json()["seconds"])

    threads = [threading.Thread(target=worker) for _ in range(clients)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    wall = time.perf_counter() - started
    return {
        "clients": clients,
        "requests": requests,
        "rps": requests / wall,
        "median_s": statistics.median(latencies),
        "in_server_s": statistics.median(overheads),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--image", type=Path, default=ROOT / "assets" / "samples" / "tess_phototest.tif")
    parser.add_argument("--engine", default="rapid")
    parser.add_argument("--requests", type=int, default=12, help="requests per client count (x2 at 16)")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args()
    data = args.image.read_bytes()

    engine = create_engine(args.engine)
    engine.load()
    recognize(data, engine=engine)  # warm-up
    times: list[float] = []
    rows = []
    with tempfile.TemporaryDirectory(prefix="textdrop-bench-") as home:
        process, url = start_server(args.engine, home)
        try:
            limits = httpx.Limits(max_connections=max(CONCURRENCY))
            with httpx.Client(base_url=url, timeout=600, limits=limits) as client:
                load(client, data, 1, 2)  # warm-up: connections, first-request setup
                for clients in CONCURRENCY:  # direct calls just before and after each block, never during
                    around = direct(engine, data, args.requests // 2)
                    row = load(client, data, clients, args.requests * (2 if clients >= 16 else 1))
                    around += direct(engine, data, args.requests // 2)
                    row["direct_median_s"] = statistics.median(around)
                    row["throughput_ratio"] = row["rps"] / (len(around) / sum(around))
                    rows.append(row)
                    times += around
        finally:
            process.terminate()
            process.wait(60)
    engine.close()
    direct_median = statistics.median(times)
    direct_rps = len(times) / sum(times)
    figures = {
        "image": args.image.name,
        "engine": args.engine,
        "direct": {"median_s": direct_median, "rps": direct_rps, "calls": len(times)},
        "serve": rows,
        "overhead_ms": (rows[0]["median_s"] - rows[0]["direct_median_s"]) * 1000,
        "in_server_overhead_ms": rows[0]["in_server_s"] * 1000,
    }
    if args.json:
        print(json.dumps(figures, indent=2))
        return
    print(f"{args.image.name}, engine {args.engine}")
    calls = len(times)
    print(f"direct, all blocks: median {direct_median * 1000:.0f} ms, {direct_rps:.2f} req/s ({calls} calls)")
    print("clients  req/s  ×direct  median ms  direct ms  beyond OCR ms")
    for row in rows:
        print(
            f"{row['clients']:>7}  {row['rps']:5.2f}  {row['throughput_ratio']:7.2f}  "
            f"{row['median_s'] * 1000:9.0f}  {row['direct_median_s'] * 1000:9.0f}  "
            f"{row['in_server_s'] * 1000:13.1f}"
        )
    print(
        f"overhead at 1 client: {figures['overhead_ms']:.1f} ms median "
        f"(beyond OCR {figures['in_server_overhead_ms']:.1f} ms); goal <= 20 ms, req/s >= 0.9 × direct"
    )


if __name__ == "__main__":
    main()
