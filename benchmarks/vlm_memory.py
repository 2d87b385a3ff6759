"""Peak memory of the llama.cpp backend with and without flash attention, and the context for a 2200 px page.

For every tiny fixture model (the Qwen2-VL of ``tests/fixtures/make_tiny_models.py``, and each module in
``tests/fixtures/tiny/`` with a ``build`` function, built for llama.cpp into a temporary folder), and for
flash attention on and off, a fresh process loads the model through textdrop's ``LlamaEngine`` at a page
size of 2200 px (dots.ocr's) and reads one 2200 × 1556 px page (A4 proportions) with a 16-token answer.
The context is set to what the page needs (:func:`textdrop.engine.vlm.guards.context_for`) even past the
tiny model's trained context, so the vision encoder and the context see a real page's load. Printed:
peak RSS (``ru_maxrss``, MiB; the median of ``--runs``) of each process, the ratio, and the context
textdrop chooses for a 2200 px page (``needs``; ``chosen``: capped by the model's trained context).

The embedded engine (RapidOCR, loaded by every VLM engine for blank pages and fallbacks) is part of
every figure; the difference between the two columns is flash attention's.

    .venv/bin/python benchmarks/vlm_memory.py [--runs 3]
"""

from __future__ import annotations

import argparse
import importlib
import json
import pkgutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
FIXTURES = REPO / "tests" / "fixtures"
PAGE = (2200, 1556)

CHILD = """
import json, resource, sys
from PIL import Image, ImageDraw
from textdrop.engine import recognize
from textdrop.engine.registry import RecognizeOptions, create_engine
from textdrop.engine.vlm.guards import context_for
from textdrop.engine.vlm.llama_cpp import LlamaOptions
from textdrop.engine.vlm.prompts import build_prompt

folder, flash = sys.argv[1], sys.argv[2] == "on"
probe = create_engine(f"llama:{folder}", {"llama": LlamaOptions(page_size=2200)})
probe.load()
chosen, family = probe.context, probe.family
probe.close()
needs = context_for(2200, build_prompt(family, "markdown"))
engine = create_engine(
    f"llama:{folder}", {"llama": LlamaOptions(page_size=2200, n_ctx=needs, flash_attn=flash)}
)
page = Image.new("RGB", (int(sys.argv[3]), int(sys.argv[4])), "white")
draw = ImageDraw.Draw(page)
for row in range(40):
    line = f"Line {row}: the quick brown fox jumps over the lazy dog 0123456789"
    draw.text((100, 60 + row * 36), line, fill="black")
result = recognize(page, engine=engine, options=RecognizeOptions(max_tokens=16))
engine.close()
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({"peak_mib": peak, "needs": needs, "chosen": chosen, "family": family,
                  "fallback": result.pages[0].fallback}))
"""


def fixture_models(out: Path) -> list[tuple[str, Path]]:
    """(label, GGUF folder) of every tiny model that builds for llama.cpp here."""
    models = [("qwen2-vl (make_tiny_models)", FIXTURES / "tiny-qwen2vl-gguf")]
    sys.path.insert(0, str(REPO))
    tiny = importlib.import_module("tests.fixtures.tiny")
    for info in pkgutil.iter_modules(tiny.__path__):
        module = importlib.import_module(f"tests.fixtures.tiny.{info.name}")
        if not callable(getattr(module, "build", None)):
            continue
        folder = out / info.name
        folder.mkdir()
        try:
            model = module.build("llama", folder)
        except tiny.Unsupported as exc:
            print(f"{info.name}: skipped on llama.cpp ({exc})", file=sys.stderr)
            continue
        models.append((f"{model.family} ({info.name})", model.path.parent))
    return models


def measure(folder: Path, flash: bool) -> dict:
    done = subprocess.run(
        [sys.executable, "-c", CHILD, str(folder), "on" if flash else "off", *map(str, PAGE)],
        capture_output=True,
        text=True,
        check=True,
        cwd=REPO,
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3, help="processes per model and setting (median)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        models = fixture_models(Path(tmp))
        print(f"page {PAGE[0]} x {PAGE[1]} px, page size 2200 px, {args.runs} runs each, peak RSS medians")
        print(f"{'model':<36} {'flash on MiB':>12} {'off MiB':>8} {'off/on':>7} {'needs':>6} {'chosen':>7}")
        for label, folder in models:
            peaks = {}
            for flash in (True, False):
                runs = [measure(folder, flash) for _ in range(args.runs)]
                peaks[flash] = statistics.median(run["peak_mib"] for run in runs)
                info = runs[-1]
                if info["fallback"]:
                    print(f"  ({label}: the page fell back: {info['fallback']})", file=sys.stderr)
            print(
                f"{label:<36} {peaks[True]:>12.0f} {peaks[False]:>8.0f} {peaks[False] / peaks[True]:>7.2f} "
                f"{info['needs']:>6} {info['chosen']:>7}"
            )


if __name__ == "__main__":
    main()
