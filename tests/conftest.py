"""Fixtures shared by all test modules."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers.fake_engines import FakeEngine
from textdrop.engine import registry


@pytest.fixture(autouse=True)
def textdrop_home(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Move every folder textdrop reads or writes (config, data, logs) into a fresh temp folder.

    No test touches the real user configuration; a test that needs a setting writes
    ``$TEXTDROP_HOME/config/config.toml`` (see :func:`write_config`).
    """
    home = tmp_path_factory.mktemp("textdrop-home")
    monkeypatch.setenv("TEXTDROP_HOME", str(home))
    return home


def write_config(home: Path, toml: str) -> Path:
    """Write ``toml`` as the configuration file under ``home`` (the ``textdrop_home`` fixture)."""
    path = home / "config" / "config.toml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(toml, encoding="utf-8")
    return path


@pytest.fixture
def fake_engine(monkeypatch: pytest.MonkeyPatch) -> Iterator[type[FakeEngine]]:
    """Register :class:`FakeEngine` as engine ``fake`` in the real registry; yields the class.

    It is also what ``auto`` picks while the fixture is active (in place of the embedded engine).
    """
    monkeypatch.setitem(registry.BUILTIN_ENGINES, "fake", "tests.helpers.fake_engines:FakeEngine")
    monkeypatch.setattr(registry, "EMBEDDED", "fake")
    FakeEngine.reset()
    yield FakeEngine
    FakeEngine.reset()


@pytest.fixture(scope="session")
def x_display() -> Iterator[object]:
    """Xvfb with two screens and a system tray (``tests/helpers/display.py``), for the whole session.

    ``DISPLAY`` and ``QT_QPA_PLATFORM=xcb`` are set for the test process, so the Qt application and
    every child process run on it. Skips the test when the Debian packages are not installed.
    """
    from tests.helpers.display import missing_tools, start_display

    missing = missing_tools()
    if missing:
        pytest.skip(f"needs {', '.join(missing)} (Debian packages; .ci/run installs them)")
    display = start_display()
    saved = {key: os.environ.get(key) for key in ("DISPLAY", "QT_QPA_PLATFORM", "WAYLAND_DISPLAY")}
    os.environ.update(DISPLAY=display.name, QT_QPA_PLATFORM="xcb")
    os.environ.pop("WAYLAND_DISPLAY", None)
    yield display
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value
    display.stop()


@pytest.fixture(scope="session")
def qapp(x_display: object, qapp_args: list[str]) -> Iterator[object]:
    """pytest-qt's QApplication, created on the Xvfb display (overrides pytest-qt's own fixture)."""
    from PySide6.QtWidgets import QApplication

    app = QApplication.instance() or QApplication([*qapp_args, "textdrop-tests"])
    app.setQuitOnLastWindowClosed(False)
    yield app


@pytest.fixture
def harness(tmp_path: Path, fake_engine: type[FakeEngine]) -> Iterator[object]:
    """A watch service harness (tests/helpers/watching.py) on the fake engine; no thread may outlive it."""
    from tests.helpers.watching import Harness

    harness = Harness(tmp_path)
    yield harness
    harness.stop()
    harness.ledger.close()
    threads = [
        t.name for t in threading.enumerate() if t.name.startswith(("textdrop-watch", "textdrop-jobs"))
    ]
    assert not threads, f"threads left running: {threads}"
