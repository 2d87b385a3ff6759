"""What the layout step costs the embedded engine: seconds per page with ``layout`` on and off.

Reads every image of a folder (default: ``shared/eval/dev`` beside the repository) with one loaded
engine, layout off and on alternately, ``--runs`` times, and prints per image the median seconds of each
and their ratio, then the median over the images. The same process and the alternation keep a noisy
machine's drift out of the ratio.

    .venv/bin/python benchmarks/layout_cost.py [FOLDER] [--runs 3]
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from textdrop.engine.documents.sources import SUPPORTED_SUFFIXES, open_source  # noqa: E402
from textdrop.engine.ocr.rapid import RapidEngine  # noqa: E402
from textdrop.engine.registry import RecognizeOptions  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path, nargs="?", default=ROOT.parent / "shared" / "eval" / "dev")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    engine = RapidEngine()
    engine.load()
    ratios, off_all, on_all = [], [], []
    images = sorted(p for p in args.folder.iterdir() if p.suffix.lower() in SUPPORTED_SUFFIXES)
    print(f"{'image':32s} {'off s':>7s} {'on s':>7s} {'on/off':>7s}")
    for path in images:
        with open_source(str(path)) as document:
            page = next(iter(document.pages()))
            times: dict[bool, list[float]] = {False: [], True: []}
            for _ in range(args.runs):
                for layout in (False, True):
                    times[layout].append(engine.recognize_page(page, RecognizeOptions(layout=layout)).seconds)
        off, on = statistics.median(times[False]), statistics.median(times[True])
        off_all.append(off)
        on_all.append(on)
        ratios.append(on / off)
        print(f"{path.stem:32s} {off:7.2f} {on:7.2f} {on / off:7.2f}")
    print(
        f"median s/page: off {statistics.median(off_all):.2f}, on {statistics.median(on_all):.2f}; "
        f"median ratio on/off {statistics.median(ratios):.2f}"
    )


if __name__ == "__main__":
    main()
