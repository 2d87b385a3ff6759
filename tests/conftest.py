"""Fixtures shared by all test modules."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers.fake_engines import FakeEngine
from textdrop.engine import auto
from textdrop.engine.backends import base


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
    monkeypatch.setitem(base.BUILTIN_ENGINES, "fake", "tests.helpers.fake_engines:FakeEngine")
    monkeypatch.setattr(auto, "EMBEDDED", "fake")
    FakeEngine.reset()
    yield FakeEngine
    FakeEngine.reset()
