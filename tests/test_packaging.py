"""The Linux PyInstaller bundle, built from the source tree by ``make package`` and run on its own.

The bundle runs with a bare environment: no ``.venv`` on PATH, no PYTHONPATH, a working folder outside
the repository, so it can only use what it carries.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from rapidfuzz.distance import Levenshtein

from tests.helpers.display import tray_icon_shown

ROOT = Path(__file__).parent.parent
BUNDLE = ROOT / "dist" / "textdrop"
EXECUTABLE = BUNDLE / "textdrop"
SAMPLE = ROOT / "assets" / "samples" / "tess_phototest-rotated-R.png"
MAX_CER = 0.05
"""The sample's CER threshold in tests/test_accuracy.py."""

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(sys.platform != "linux", reason="the Linux bundle is built and run here"),
    pytest.mark.timeout(900),
]


@pytest.fixture(scope="module")
def bundle() -> Path:
    """``make package`` once for the module (a venv of its own, then PyInstaller: about a minute)."""
    subprocess.run(["make", "package"], cwd=ROOT, check=True, capture_output=True)
    assert EXECUTABLE.is_file() and os.access(EXECUTABLE, os.X_OK)
    return EXECUTABLE


def bare_env(home: Path, **extra: str) -> dict[str, str]:
    """An environment with nothing of the development setup in it."""
    return {"PATH": "/usr/bin:/bin", "HOME": str(home), "TEXTDROP_HOME": str(home / "textdrop"), **extra}


def test_version(bundle: Path, tmp_path: Path) -> None:
    from textdrop import __version__

    out = subprocess.run(
        [bundle, "--version"], env=bare_env(tmp_path), cwd=tmp_path, capture_output=True, text=True
    )
    assert out.returncode == 0 and out.stdout.strip() == f"textdrop {__version__}"


def test_ocr_prints_the_sample_text(bundle: Path, tmp_path: Path) -> None:
    command = [bundle, "ocr", SAMPLE, "--stdout"]
    out = subprocess.run(
        command, env=bare_env(tmp_path), cwd=tmp_path, capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr
    truth = " ".join(SAMPLE.with_name("tess_phototest-rotated-R.gt.txt").read_text().split())
    assert Levenshtein.normalized_distance(" ".join(out.stdout.split()), truth) <= MAX_CER, out.stdout


@pytest.mark.gui
def test_tray_shows_its_icon_and_quits_when_asked(bundle: Path, tmp_path: Path, x_display: object) -> None:
    from textdrop.desktop.instance import send_request

    env = bare_env(tmp_path, DISPLAY=os.environ["DISPLAY"], QT_QPA_PLATFORM="xcb")
    tray = subprocess.Popen([bundle, "tray", "--no-watch"], env=env, cwd=tmp_path, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 60
        while not tray_icon_shown(env) and time.monotonic() < deadline:
            assert tray.poll() is None, tray.stderr.read().decode() if tray.stderr else ""
            time.sleep(0.1)
        assert tray_icon_shown(env), "the bundled tray app showed no icon within 60 s"
        os.environ["TEXTDROP_HOME"], saved = env["TEXTDROP_HOME"], os.environ.get("TEXTDROP_HOME", "")
        try:
            # the same socket name: the same data folder. On a loaded machine the app, still loading its
            # engine, can take longer than one answer window: ask again for up to a minute, until it answers
            # or has quit (then the exit code tells).
            answer, deadline = None, time.monotonic() + 60
            while time.monotonic() < deadline:
                answer = send_request("quit", answer_timeout_ms=10_000)
                if answer is not None or tray.poll() is not None:
                    break
            assert answer == "ok" or tray.poll() is not None, answer
        finally:
            os.environ["TEXTDROP_HOME"] = saved
        assert tray.wait(30) == 0
    finally:
        if tray.poll() is None:
            tray.kill()


def test_bundle_holds_no_tests_or_caches(bundle: Path) -> None:
    found = [
        path.relative_to(BUNDLE)
        for path in BUNDLE.rglob("*")
        if path.name in ("__pycache__", ".pytest_cache", "tests", "conftest.py") or path.suffix == ".pyc"
    ]
    assert found == []
    internal = BUNDLE / "_internal"
    assert (internal / "rapidocr" / "models").is_dir(), "RapidOCR's models are missing"
    assert "Apache License" in (internal / "LICENSE").read_text(encoding="utf-8")
    notices = (internal / "THIRD-PARTY-NOTICES.txt").read_text(encoding="utf-8")
    for package in ("rapidocr", "onnxruntime", "PySide6_Essentials", "pypdfium2"):
        assert package in notices, f"no notice for {package}"
    assert "Permission is hereby granted" in notices, "the notices carry no licence texts"
    assert list((internal / "textdrop" / "desktop" / "icons").glob("tray-*.png")), (
        "the tray icons are missing"
    )
