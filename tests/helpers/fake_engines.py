"""Fast fake engines for tests that exercise everything around recognition but not the OCR itself.

They are registered through the real registry (``BUILTIN_ENGINES``) by the ``fake_engine`` fixture in
``tests/conftest.py``, so the CLI and :func:`textdrop.engine.recognize` create, load and close them
exactly as they would a real backend.
"""

from __future__ import annotations

import threading
import time
from typing import TYPE_CHECKING, ClassVar

from textdrop.engine.errors import EngineUnavailableError
from textdrop.engine.registry import Engine, RecognizeOptions
from textdrop.engine.result import Line, PageResult

if TYPE_CHECKING:
    from PIL import Image

CRASH_WIDTH = 13
"""A page exactly this many pixels wide makes :class:`FakeEngine` raise ``RuntimeError``."""


def fake_text(width: int, height: int) -> str:
    """The text :class:`FakeEngine` returns for a page of ``width``×``height`` pixels."""
    return f"fake page {width}x{height}"


class FakeEngine(Engine):
    """Returns ``fake page WxH`` for every page, from the decoded image's size, in no time.

    Every page it sees is recorded in :attr:`pages` (as ``(width, height)``) so that tests can count
    how often a file was really decoded and recognised. A page :data:`CRASH_WIDTH` pixels wide raises
    ``RuntimeError``, standing in for an unexpected bug in a backend.
    """

    name = "fake"
    install_hint = "It is a test double; the fake_engine fixture registers it."

    pages: ClassVar[list[tuple[int, int]]] = []
    loads: ClassVar[int] = 0
    closes: ClassVar[int] = 0

    def __init__(self) -> None:
        super().__init__()
        self.loaded = False

    @classmethod
    def reset(cls) -> None:
        """Forget the pages, loads and closes recorded so far."""
        cls.pages = []
        cls.loads = 0
        cls.closes = 0

    @classmethod
    def is_available(cls) -> bool:
        return True

    def load(self) -> None:
        if not self.loaded:
            self.loaded = True
            type(self).loads += 1

    def close(self) -> None:
        if self.loaded:
            self.loaded = False
            type(self).closes += 1

    def recognize_page(self, image: Image.Image, options: RecognizeOptions) -> PageResult:
        assert self.loaded, "recognize_page called before load()"
        assert image.mode == "RGB", f"pages must reach the engine as RGB, got {image.mode}"
        image.load()  # the pixels, not only the header, must be there
        width, height = image.size
        if width == CRASH_WIDTH:
            raise RuntimeError(f"fake engine crashed on a {width}x{height} page")
        type(self).pages.append((width, height))
        text = fake_text(width, height)
        return PageResult(
            number=1,
            width=width,
            height=height,
            markdown=text,
            text=text,
            lines=[Line(text, (0, 0, width, height), 1.0)],
        )


class SlowEngine(FakeEngine):
    """:class:`FakeEngine` that takes :attr:`delay` seconds per page and records which thread did what.

    Registered as engine ``slow`` by the ``job_engines`` fixture in ``tests/test_jobs.py``. It keeps its
    own :attr:`pages` (in the order it saw them), :attr:`loads` and :attr:`closes`, apart from
    :class:`FakeEngine`'s. When :attr:`gate` is set to an Event, every page waits for it (at most 5 s)
    before it is recognised, so a test can hold the worker busy exactly as long as it needs.
    """

    name = "slow"

    delay: ClassVar[float] = 0.05
    gate: ClassVar[threading.Event | None] = None
    pages: ClassVar[list[tuple[int, int]]] = []
    loads: ClassVar[int] = 0
    closes: ClassVar[int] = 0
    threads: ClassVar[dict[str, list[str]]] = {}
    """``"load"``, ``"page"``, ``"close"`` → names of the threads that called them, in order."""

    @classmethod
    def reset(cls) -> None:
        """Forget what was recorded; delay back to 0.05 s, no gate."""
        super().reset()
        cls.delay = 0.05
        cls.gate = None
        cls.threads = {"load": [], "page": [], "close": []}

    def _record(self, what: str) -> None:
        type(self).threads.setdefault(what, []).append(threading.current_thread().name)

    def load(self) -> None:
        self._record("load")
        super().load()

    def close(self) -> None:
        self._record("close")
        super().close()

    def recognize_page(self, image: Image.Image, options: RecognizeOptions) -> PageResult:
        self._record("page")
        gate = type(self).gate
        if gate is not None:
            gate.wait(5)
        time.sleep(type(self).delay)
        return super().recognize_page(image, options)


class BrokenLoadEngine(FakeEngine):
    """An engine whose ``load()`` fails with :class:`EngineUnavailableError`, like a model file gone bad.

    Registered as engine ``brokenload`` by the ``job_engines`` fixture in ``tests/test_jobs.py``.
    """

    name = "brokenload"
    loads: ClassVar[int] = 0
    closes: ClassVar[int] = 0
    pages: ClassVar[list[tuple[int, int]]] = []

    def load(self) -> None:
        type(self).loads += 1
        raise EngineUnavailableError("The brokenload engine cannot load its model; reinstall it.")
