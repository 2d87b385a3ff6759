"""Fonts for rendering test pages, from the Debian font packages that ``.ci/run`` installs.

``fonts-dejavu-core`` (Latin, Greek, Cyrillic), ``fonts-noto-core`` (Arabic, Devanagari, Thai, Tamil,
Telugu, …) and ``fonts-noto-cjk`` (Korean, Chinese, Japanese). A test whose font is missing is skipped
with the package to install.
"""

from __future__ import annotations

from pathlib import Path

import pytest

FONT_DIRS = (Path("/usr/share/fonts"), Path("/usr/local/share/fonts"))
PACKAGES = {"DejaVu": "fonts-dejavu-core", "NotoSansCJK": "fonts-noto-cjk", "Noto": "fonts-noto-core"}


def font_path(name: str) -> str:
    """The path of the font file called ``name`` (e.g. ``NotoSansThai-Regular.ttf``); skips the test when
    no such file is installed."""
    for folder in FONT_DIRS:
        for path in folder.rglob(name) if folder.is_dir() else ():
            return str(path)
    package = next((p for prefix, p in PACKAGES.items() if name.startswith(prefix)), "a font package")
    pytest.skip(f"needs the font {name} (Debian package {package}; .ci/run installs it)")
