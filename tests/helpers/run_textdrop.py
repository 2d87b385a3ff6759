"""Run the ``textdrop`` command in a real process with the test engines registered.

For tests that need a process of their own (``kill -9``, signals): ``python -m tests.helpers.run_textdrop
watch FOLDER``, run from the repository root. Engines ``fake`` and ``slow`` are added to the real registry
exactly as the ``fake_engine`` fixture does; ``TEXTDROP_TEST_DELAY`` sets the ``slow`` engine's seconds
per page (default 0.05).
"""

from __future__ import annotations

import os
import sys

from tests.helpers.fake_engines import SlowEngine
from textdrop.cli import run
from textdrop.engine import registry


def main() -> int:
    registry.BUILTIN_ENGINES["fake"] = "tests.helpers.fake_engines:FakeEngine"
    registry.BUILTIN_ENGINES["slow"] = "tests.helpers.fake_engines:SlowEngine"
    SlowEngine.reset()
    SlowEngine.delay = float(os.environ.get("TEXTDROP_TEST_DELAY", "0.05"))
    return run(sys.argv[1:])


if __name__ == "__main__":
    sys.exit(main())
