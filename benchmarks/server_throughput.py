"""Pages per second through the OpenAI-compatible backend against a server that serves K pages at once.

A loopback OpenAI-compatible server (``tests/helpers/openai_server.py``) answers every chat request after
a fixed service time (``--service`` seconds), at most ``--slots`` (K) at once, the rest waiting their turn:
the shape of a vLLM or llama-server with K slots. The same pages go through:

- **textdrop** at ``concurrency`` 1, 2, 4 and 8: a :class:`~textdrop.engine.jobs.JobQueue` on
  ``openai:m``, one job per page image, as the folder watcher submits them (page preparation, the
  blank-page check, the streamed answer watched for loops, post-processing);
- **client**: a plain concurrent client, ``--slots`` threads each resizing and encoding a page as any
  client must, posting it with httpx and reading the event stream: what a bare script gets from that
  server.

Figures are medians over ``--runs`` runs. The last line is a JSON object ``{"ratio_vs_client": R,
"speedup_1_to_8": S}``: textdrop ÷ client at concurrency 8, and textdrop at 8 ÷ at 1. Goal: R ≥ 0.9 and
S ≥ 6 with K = 8.

    .venv/bin/python benchmarks/server_throughput.py [--pages 32] [--service 0.5] [--slots 8] [--runs 3]
"""

from __future__ import annotations

import argparse
import concurrent.futures
import json
import random
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402
from PIL import Image, ImageDraw  # noqa: E402

from tests.helpers.openai_server import LoopbackServer  # noqa: E402
from textdrop.engine.backends.base import RecognizeOptions  # noqa: E402
from textdrop.engine.backends.openai_api import OpenAIOptions  # noqa: E402
from textdrop.engine.jobs import JobQueue  # noqa: E402
from textdrop.engine.prompts import build_prompt  # noqa: E402
from textdrop.engine.vlm import GENERIC_PAGE_SIZE, png_data_url, prepare_page  # noqa: E402

LEVELS = (1, 2, 4, 8)


def make_pages(count: int) -> list[Image.Image]:
    """``count`` distinct scan-like pages, 1000×1294 pixels, with blocks of ink."""
    pages = []
    for seed in range(count):
        rng = random.Random(seed)
        image = Image.new("RGB", (1000, 1294), "white")
        draw = ImageDraw.Draw(image)
        for _ in range(60):
            x, y = rng.randrange(0, 900), rng.randrange(0, 1260)
            draw.rectangle((x, y, x + rng.randrange(20, 90), y + 12), fill="black")
        pages.append(image)
    return pages


def run_textdrop(url: str, pages: list[Image.Image], concurrency: int) -> float:
    """Pages per second through a job queue on ``openai:m`` with ``concurrency`` pages in flight."""
    options = OpenAIOptions(base_url=url, concurrency=concurrency)
    with JobQueue("openai:m", backends={"openai": options}, options=RecognizeOptions()) as queue:
        queue.loaded.result()
        started = time.perf_counter()
        jobs = [queue.submit(page) for page in pages]
        for job in jobs:
            job.result()
        return len(pages) / (time.perf_counter() - started)


def run_client(url: str, pages: list[Image.Image], threads: int) -> float:
    """Pages per second from a plain client: ``threads`` threads, each resizing its page to the same size
    and encoding it as textdrop does (any client must), then posting it and reading the event stream."""
    prompt = build_prompt("generic", "markdown")
    limits = httpx.Limits(max_connections=threads, max_keepalive_connections=threads)
    with httpx.Client(base_url=url, timeout=60, limits=limits) as client:

        def send(page: Image.Image) -> str:
            image = {
                "type": "image_url",
                "image_url": {"url": png_data_url(prepare_page(page, GENERIC_PAGE_SIZE))},
            }
            content = [image, {"type": "text", "text": prompt}]
            body = {
                "model": "m",
                "stream": True,
                "temperature": 0.1,
                "messages": [{"role": "user", "content": content}],
            }
            text = []
            with client.stream("POST", "/chat/completions", json=body) as response:
                for line in response.iter_lines():
                    if line.startswith("data:") and line[5:].strip() != "[DONE]":
                        for choice in json.loads(line[5:])["choices"]:
                            text.append((choice.get("delta") or {}).get("content") or "")
            return "".join(text)

        started = time.perf_counter()
        with concurrent.futures.ThreadPoolExecutor(threads) as pool:
            answers = list(pool.map(send, pages))
        seconds = time.perf_counter() - started
    assert all(answers)
    return len(pages) / seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pages", type=int, default=32)
    parser.add_argument("--service", type=float, default=0.5, help="seconds the server takes per page")
    parser.add_argument("--slots", type=int, default=8, help="K: requests the server serves at once")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    pages = make_pages(args.pages)
    figures: dict[str, list[float]] = {f"textdrop c={c}": [] for c in LEVELS}
    figures["client"] = []
    with LoopbackServer(service_time=args.service, slots=args.slots) as server:
        for _ in range(args.runs):
            figures["client"].append(run_client(server.url, pages, args.slots))
            for level in LEVELS:
                figures[f"textdrop c={level}"].append(run_textdrop(server.url, pages, level))
    medians = {name: statistics.median(values) for name, values in figures.items()}
    print(f"{args.pages} pages, service {args.service} s, K = {args.slots} slots, median of {args.runs} runs")
    for name, value in medians.items():
        print(f"{name:14} {value:7.2f} pages/s")
    ratio = medians["textdrop c=8"] / medians["client"]
    speedup = medians["textdrop c=8"] / medians["textdrop c=1"]
    print(json.dumps({"ratio_vs_client": round(ratio, 3), "speedup_1_to_8": round(speedup, 2)}))


if __name__ == "__main__":
    main()
