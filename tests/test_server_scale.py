"""The server backend at scale: pages in flight per endpoint, several endpoints, one failing mid-run.

Loopback OpenAI-compatible servers (``tests/helpers/openai_server.py``) stand in for vLLM; the engine, the
job queue, the watcher and the CLI are real.
"""

from __future__ import annotations

import random
import threading
import time
from pathlib import Path

import pytest
from PIL import Image, ImageDraw

from tests.conftest import write_config
from tests.helpers.openai_server import PAGE_TEXT, LoopbackServer
from textdrop.cli import run
from textdrop.engine import recognize
from textdrop.engine.documents.sidecar import read_metadata
from textdrop.engine.jobs import JobQueue, Priority
from textdrop.engine.registry import RecognizeOptions, create_engine
from textdrop.engine.vlm.openai_api import OpenAIOptions

ANSWER = "".join(PAGE_TEXT).strip()
WAIT = 30.0

pytestmark = pytest.mark.slow  # the embedded engine loads behind every VLM engine (about 0.5 s)


def page(width: int, height: int, seed: int) -> Image.Image:
    """A white page with dark blocks (about 3 % ink, so no detector survey) that differ by ``seed``."""
    rng = random.Random(seed)
    image = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(image)
    for _ in range(8):
        x, y = rng.randrange(0, width - 80), rng.randrange(0, height - 30)
        draw.rectangle((x, y, x + 70, y + 20), fill="black")
    draw.text((10, 10), f"Page {seed}", fill="black")
    return image


def test_pages_of_a_pdf_run_side_by_side_and_come_back_in_order(tmp_path: Path) -> None:
    pdf = tmp_path / "doc.pdf"
    sheets = [page(600, 400 + 60 * i, seed=i) for i in range(8)]
    sheets[0].save(pdf, save_all=True, append_images=sheets[1:], resolution=72)
    with LoopbackServer(service_time=0.2) as server:
        server.answer = lambda size: (f"Page {size[0]}x{size[1]}",)
        options = OpenAIOptions(base_url=server.url, concurrency=4)
        engine = create_engine("openai:m", {"openai": options})
        try:
            result = recognize(pdf, engine=engine, options=RecognizeOptions(fallback=False))
        finally:
            engine.close()
    assert [p.number for p in result.pages] == list(range(1, 9))
    assert [p.markdown for p in result.pages] == [f"Page {p.width}x{p.height}" for p in result.pages]
    ratios = [p.height / p.width for p in result.pages]
    assert ratios == sorted(ratios) and len(set(ratios)) == 8  # each answer is its own page's, in order
    assert server.peak > 1 and server.peak <= 4  # side by side, never more than the concurrency


def test_lanes_keep_priority_and_cancel_one_job_only(tmp_path: Path) -> None:
    images = [page(500, 400, seed=i) for i in range(6)]
    started: list[str] = []
    with LoopbackServer() as server:
        server.gate = threading.Event()
        options = OpenAIOptions(base_url=server.url, concurrency=2)
        with JobQueue("openai:m", backends={"openai": options}) as queue:
            assert queue.loaded.result(WAIT) is None and queue.concurrency == 2
            jobs = [
                queue.submit(image, on_start=lambda job, n=n: started.append(f"bg{n}"))
                for n, image in enumerate(images)
            ]
            _wait_for(lambda: len(server.requests) == 2)  # two lanes busy, the gate holds them
            urgent = queue.submit(
                page(500, 400, seed=99),
                priority=Priority.INTERACTIVE,
                on_start=lambda job: started.append("i"),
            )
            assert jobs[0].cancel()
            server.gate.set()
            results = [job.result(WAIT) for job in jobs[1:]] + [urgent.result(WAIT)]
    assert started[:2] == ["bg0", "bg1"] and started[2] == "i"  # the interactive job took the next lane
    assert jobs[0].cancelled() and all(r.pages[0].markdown == ANSWER for r in results)


def test_twenty_pages_through_watch_with_two_servers_one_failing_mid_run(
    tmp_path: Path, textdrop_home: Path
) -> None:
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    for n in range(20):
        page(600, 800, seed=n).save(inbox / f"scan_{n:02}.png")
    with LoopbackServer(service_time=0.05) as steady, LoopbackServer(service_time=0.05) as failing:
        write_config(
            textdrop_home,
            f'[openai]\nbase_url = "{steady.url}"\nendpoints = ["{failing.url}"]\n'
            "concurrency = 3\nretry_seconds = 0.01\nretries = 3\n",
        )

        def kill_after_four() -> None:
            _wait_for(lambda: len(failing.requests) >= 4)
            failing.fail()  # its streams under way break; new connections are refused

        killer = threading.Thread(target=kill_after_four, daemon=True)
        killer.start()
        code = run(["watch", str(inbox), "--once", "--settle", "0", "-e", "openai:m"])
        killer.join(WAIT)
    assert code == 0
    sidecars = sorted(inbox.glob("*.md"))
    assert [p.name for p in sidecars] == [f"scan_{n:02}.png.md" for n in range(20)]  # each exactly once
    for sidecar in sidecars:
        meta = read_metadata(sidecar)
        assert meta is not None and meta["engine"] == "openai" and "fallback" not in meta
        body = sidecar.read_text().split("---\n", 2)[2].strip()
        assert body == ANSWER, sidecar.name  # complete, and no text twice
    assert len(failing.requests) >= 4 and len(steady.requests) >= 16  # the failed one's pages went elsewhere


def _wait_for(condition, timeout: float = WAIT) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out waiting"
        time.sleep(0.01)
