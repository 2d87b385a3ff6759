"""What a DeepSeek-OCR test fixture for mlx-vlm would cost: build, folder size, load, one page.

mlx-vlm 0.7.10 builds DeepSeek-OCR's SAM encoder at ViT-B size whatever the config says
(``tests/fixtures/tiny/deepseek_ocr.py``), so the fixture cannot be tiny. This writes it anyway
(``build("mlx", out, full_size_sam=True)``) into a temporary folder and prints, as medians over ``--runs``:
build seconds, folder MB, ``mlx_vlm.load`` seconds; then the SAM encoder alone on one 1024 px view
(``--sam-runs``) and, with ``--page``, one page through textdrop's engine (``create_engine("mlx:<folder>")``,
``recognize``), with its answer and whether it fell back. The SAM pass took 250 to 410 s on the 2-core CI
machine (250 s in float16, 410 s in float32, the machine shared), which is why there is no end-to-end mlx
test for DeepSeek-OCR.

    .venv/bin/python benchmarks/deepseek_ocr_mlx.py [--runs 3] [--sam-runs 1] [--page]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.fixtures.tiny import deepseek_ocr  # noqa: E402
from tests.helpers.tiny_families import page_image  # noqa: E402


def _median(label: str, values: list[float], unit: str = "s") -> None:
    each = ", ".join(f"{v:.2f}" for v in values)
    print(f"{label:<22} median {statistics.median(values):8.2f} {unit}  ({each})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3, help="builds and loads to time")
    parser.add_argument("--sam-runs", type=int, default=1, help="SAM passes over one 1024 px view")
    parser.add_argument("--page", action="store_true", help="also read one page through textdrop's engine")
    args = parser.parse_args()
    import mlx.core as mx
    from mlx_vlm import load

    with tempfile.TemporaryDirectory(prefix="deepseek-ocr-mlx-") as tmp:
        out = Path(tmp) / "model"
        builds, sizes, loads = [], [], []
        for _ in range(args.runs):
            shutil.rmtree(out, ignore_errors=True)
            start = time.perf_counter()
            deepseek_ocr.build("mlx", out, full_size_sam=True)
            builds.append(time.perf_counter() - start)
            sizes.append(sum(f.stat().st_size for f in out.iterdir()) / 2**20)
            start = time.perf_counter()
            model, _ = load(str(out))
            loads.append(time.perf_counter() - start)
        _median("build", builds)
        _median("folder", sizes, "MB")
        _median("load", loads)
        view = mx.full((1, 1024, 1024, 3), 0.5, dtype=mx.bfloat16)  # the processor's global view, NHWC
        sam = []
        for _ in range(args.sam_runs):
            start = time.perf_counter()
            mx.eval(model.sam_model(view))
            sam.append(time.perf_counter() - start)
        _median("SAM, one 1024 px view", sam)
        if args.page:
            from textdrop.engine import recognize
            from textdrop.engine.registry import create_engine

            engine = create_engine(f"mlx:{out}")
            engine.load()
            start = time.perf_counter()
            result = recognize(page_image(), engine=engine)
            _median("page through engine", [time.perf_counter() - start])
            engine.close()
            page = result.pages[0]
            print(f"answer {page.markdown!r}, fallback {page.fallback!r}")


if __name__ == "__main__":
    main()
