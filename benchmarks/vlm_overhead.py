"""textdrop's time per page on a VLM backend ÷ a direct call of the runtime on the same image, same run.

For each backend (llama.cpp, mlx-vlm) and the tiny random-weight models in ``tests/fixtures/`` (or any
model given with ``--llama-model`` / ``--mlx-model``):

- **direct**: the runtime alone, as its own README shows it: llama-cpp-python's
  ``create_chat_completion`` with the image as a PNG data URL (``MTMDChatHandler``), or mlx-vlm's
  ``stream_generate``; the image is the page already resized to the model's page size.
- **textdrop**: ``textdrop.engine.recognize(path)`` on the same scan file: decoding, page preparation,
  the blank-page check from pixels (the embedded detector only for a page with a speck of ink), the
  output budget, the streamed generation watched for loops, post-processing.

Both generate the same number of tokens (``--tokens``; the tiny models never stop early). Runs alternate
direct / textdrop so drift hits both; figures are medians. Goal: ratio <= 1.10 for both backends.
``survey s`` is the embedded detector alone on the page: what textdrop paid on every page before
``docs/adr/014-vlm-guards-and-server-scale.md``, and now pays only on a page whose pixels are not
conclusive (a speck of ink on an otherwise empty page).

    .venv/bin/python benchmarks/vlm_overhead.py [--runs 7] [--tokens 64] [--image assets/samples/...]
"""

from __future__ import annotations

import argparse
import base64
import io
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from PIL import Image  # noqa: E402

from textdrop.engine import recognize  # noqa: E402
from textdrop.engine.registry import RecognizeOptions, create_engine  # noqa: E402
from textdrop.engine.vlm.guards import prepare_page  # noqa: E402
from textdrop.engine.vlm.prompts import build_prompt  # noqa: E402

FIXTURES = ROOT / "tests" / "fixtures"


def direct_llama(engine: Any, page: Image.Image, prompt: str, tokens: int) -> int:
    """One generation through llama-cpp-python alone (the engine's loaded ``Llama``); returns chunks."""
    buffer = io.BytesIO()
    page.save(buffer, format="PNG", compress_level=1)
    url = "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")
    content = [{"type": "image_url", "image_url": {"url": url}}, {"type": "text", "text": prompt}]
    stream = engine._llm.create_chat_completion(
        messages=[{"role": "user", "content": content}], max_tokens=tokens, temperature=0.1, stream=True
    )
    return sum(1 for part in stream if part["choices"][0]["delta"].get("content"))


def direct_mlx(engine: Any, page: Image.Image, prompt: str, tokens: int) -> int:
    """One generation through mlx-vlm alone (the engine's loaded model); returns chunks."""
    from mlx_vlm import stream_generate
    from mlx_vlm.prompt_utils import apply_chat_template

    formatted = apply_chat_template(engine._processor, engine._model.config, prompt, num_images=1)
    stream = stream_generate(
        engine._model, engine._processor, formatted, image=[page], max_tokens=tokens, temperature=0.1
    )
    return sum(1 for response in stream if response.text)


def measure(backend: str, model: str, image: Path, runs: int, tokens: int) -> dict[str, Any]:
    engine = create_engine(f"{backend}:{model}")
    engine.load()
    try:
        options = RecognizeOptions(max_tokens=tokens)
        page = prepare_page(Image.open(image).convert("RGB"), engine.page_size)
        prompt = build_prompt(engine.family, "markdown")
        direct = direct_llama if backend == "llama" else direct_mlx
        direct(engine, page, prompt, tokens)  # warm-up: first-call setup, caches
        recognize(image, engine=engine, options=options)
        direct_times, textdrop_times, survey_times, notes = [], [], [], set()
        for _ in range(runs):
            started = time.perf_counter()
            engine._embedded.detect_lines(page)
            survey_times.append(time.perf_counter() - started)
            started = time.perf_counter()
            direct(engine, page, prompt, tokens)
            direct_times.append(time.perf_counter() - started)
            started = time.perf_counter()
            result = recognize(image, engine=engine, options=options)
            textdrop_times.append(time.perf_counter() - started)
            notes.update(note for p in result.pages for note in p.notes if "budget" not in note)
            notes.update(p.fallback for p in result.pages if p.fallback)
    finally:
        engine.close()
    direct_median, textdrop_median = statistics.median(direct_times), statistics.median(textdrop_times)
    return {
        "backend": backend,
        "model": Path(model).name,
        "page": f"{page.width}x{page.height}",
        "tokens": tokens,
        "direct_s": round(direct_median, 4),
        "textdrop_s": round(textdrop_median, 4),
        "ratio": round(textdrop_median / direct_median, 3),
        "survey_s": round(statistics.median(survey_times), 4),
        "notes": sorted(notes),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--tokens", type=int, default=64)
    parser.add_argument("--image", type=Path, default=ROOT / "assets" / "samples" / "sroie_058.jpg")
    parser.add_argument("--llama-model", default=str(FIXTURES / "tiny-qwen2vl-gguf"))
    parser.add_argument("--mlx-model", default=str(FIXTURES / "tiny-qwen2vl-mlx"))
    parser.add_argument("--skip", action="append", default=[], choices=("llama", "mlx"))
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    rows = [
        measure(backend, model, args.image, args.runs, args.tokens)
        for backend, model in (("llama", args.llama_model), ("mlx", args.mlx_model))
        if backend not in args.skip
    ]
    if args.json:
        print(json.dumps(rows, indent=2))
        return
    header = f"{'backend':8} {'model':18} {'page':>9} {'tokens':>6} {'direct s':>8} {'textdrop s':>10}"
    print(f"{header} ratio  survey s")
    for row in rows:
        figures = (
            f"{row['tokens']:>6} {row['direct_s']:>8.3f} {row['textdrop_s']:>10.3f} {row['ratio']:>5.3f}"
        )
        print(f"{row['backend']:8} {row['model']:18} {row['page']:>9} {figures} {row['survey_s']:>9.3f}")
        for note in row["notes"]:
            print(f"    note: {note}")


if __name__ == "__main__":
    main()
