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

When llama-cpp-python's server is installed it also runs against a real server process: ``llama_cpp.server``
with the tiny fixture model (``tests/fixtures``), textdrop at concurrency 1 and 8 and the plain client. That
server runs one request at a time, so it shows textdrop's overhead on a real server, not a speedup;
llama-server (C++, ``--parallel N``) has slots.

    .venv/bin/python benchmarks/server_throughput.py [--pages 32] [--service 0.5] [--slots 8] [--runs 3]
"""

from __future__ import annotations

import argparse
import concurrent.futures
import contextlib
import importlib.util
import json
import random
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402
from PIL import Image, ImageDraw  # noqa: E402

from tests.helpers.openai_server import LoopbackServer  # noqa: E402
from textdrop.engine.jobs import JobQueue  # noqa: E402
from textdrop.engine.registry import RecognizeOptions  # noqa: E402
from textdrop.engine.vlm.families import DEFAULT_PAGE_SIZE  # noqa: E402
from textdrop.engine.vlm.guards import png_data_url, prepare_page  # noqa: E402
from textdrop.engine.vlm.openai_api import OpenAIOptions  # noqa: E402
from textdrop.engine.vlm.prompts import build_prompt  # noqa: E402

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


def run_textdrop(
    url: str, pages: list[Image.Image], concurrency: int, model: str = "m", real: Real | None = None
) -> float:
    """Pages per second through a job queue on ``openai:<model>`` with ``concurrency`` pages in flight."""
    options = OpenAIOptions(base_url=url, concurrency=concurrency, page_size=real.page_size if real else None)
    # the tiny random model sometimes answers nothing: such a page is then read by the embedded engine
    recognize = RecognizeOptions(max_tokens=real.tokens) if real else RecognizeOptions()
    with JobQueue(f"openai:{model}", backends={"openai": options}, options=recognize) as queue:
        queue.loaded.result()
        started = time.perf_counter()
        jobs = [queue.submit(page) for page in pages]
        for job in jobs:
            job.result()
        return len(pages) / (time.perf_counter() - started)


def run_client(
    url: str, pages: list[Image.Image], threads: int, model: str = "m", real: Real | None = None
) -> float:
    """Pages per second from a plain client: ``threads`` threads, each resizing its page to the same size
    and encoding it as textdrop does (any client must), then posting it and reading the event stream."""
    prompt = build_prompt("generic", "markdown")
    limits = httpx.Limits(max_connections=threads, max_keepalive_connections=threads)
    with httpx.Client(base_url=url, timeout=60, limits=limits) as client:

        def send(page: Image.Image) -> str:
            size = real.page_size if real else DEFAULT_PAGE_SIZE
            image = {"type": "image_url", "image_url": {"url": png_data_url(prepare_page(page, size))}}
            content = [image, {"type": "text", "text": prompt}]
            body: dict = {"model": model, "stream": True, "temperature": 0.1}
            body["messages"] = [{"role": "user", "content": content}]
            if real:
                body["max_tokens"] = real.tokens
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
    assert all(answers) or real, "the server gave an empty answer"
    return len(pages) / seconds


@dataclass(frozen=True)
class Real:
    """How pages go to the real server: small pages and few tokens, so the tiny model answers fast."""

    page_size: int = 448
    tokens: int = 24


@contextlib.contextmanager
def llama_cpp_server() -> Iterator[str | None]:
    """``llama_cpp.server`` serving the tiny GGUF fixture on 127.0.0.1 (its base URL), or ``None`` when
    llama-cpp-python's server extra is not installed."""
    if importlib.util.find_spec("llama_cpp") is None or importlib.util.find_spec("llama_cpp.server") is None:
        yield None
        return
    folder = ROOT / "tests" / "fixtures" / "tiny-qwen2vl-gguf"
    model = next(p for p in folder.glob("*.gguf") if not p.name.startswith("mmproj"))
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    command = [sys.executable, "-m", "llama_cpp.server", "--model", str(model)]
    command += ["--clip_model_path", str(next(folder.glob("mmproj*.gguf"))), "--chat_format", "mtmd"]
    command += ["--model_alias", "tiny", "--host", "127.0.0.1", "--port", str(port), "--n_ctx", "4096"]
    command += ["--interrupt_requests", "false"]  # its default: a new request cuts the one streaming
    server = subprocess.Popen(
        [*command, "--verbose", "false"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    url = f"http://127.0.0.1:{port}/v1"
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and server.poll() is None:
            try:
                if httpx.get(f"{url}/models", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.2)
        yield url if server.poll() is None else None
    finally:
        server.terminate()
        server.wait(10)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pages", type=int, default=32)
    parser.add_argument("--service", type=float, default=0.5, help="seconds the server takes per page")
    parser.add_argument("--slots", type=int, default=8, help="K: requests the server serves at once")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--real-pages", type=int, default=8, help="pages for the real server (0: skip it)")
    args = parser.parse_args()
    pages = make_pages(args.pages)
    figures: dict[str, list[float]] = {f"textdrop c={c}": [] for c in LEVELS}
    figures["client"] = []
    with LoopbackServer(service_time=args.service, slots=args.slots) as server:
        for _ in range(args.runs):
            figures["client"].append(run_client(server.url, pages, args.slots))
            for level in LEVELS:
                figures[f"textdrop c={level}"].append(run_textdrop(server.url, pages, level))
    if args.real_pages:
        with llama_cpp_server() as url:
            if url is None:
                print("real server: llama-cpp-python's server is not installed; skipped")
            else:
                real, sample = Real(), pages[: args.real_pages]
                print(f"real server (llama_cpp.server, tiny fixture, one at a time), {len(sample)} pages:")
                print(f"  client     {run_client(url, sample, 8, 'tiny', real):7.2f} pages/s")
                for level in (1, 8):
                    print(
                        f"  textdrop c={level} {run_textdrop(url, sample, level, 'tiny', real):7.2f} pages/s"
                    )
    medians = {name: statistics.median(values) for name, values in figures.items()}
    print(f"{args.pages} pages, service {args.service} s, K = {args.slots} slots, median of {args.runs} runs")
    for name, value in medians.items():
        print(f"{name:14} {value:7.2f} pages/s")
    ratio = medians["textdrop c=8"] / medians["client"]
    speedup = medians["textdrop c=8"] / medians["textdrop c=1"]
    print(json.dumps({"ratio_vs_client": round(ratio, 3), "speedup_1_to_8": round(speedup, 2)}))


if __name__ == "__main__":
    main()
