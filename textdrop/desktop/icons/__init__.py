"""The app's icons as package data: ``textdrop-{size}.png`` (the app icon) and ``tray-{light,dark,busy}.png``.

The PNGs are rendered from ``assets/icons/textdrop.svg`` by ``assets/make_icons.py`` and committed; this
module only finds them. It imports no Qt, so code that only needs a path stays Qt-free.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

APP_ICON_SIZES = (16, 32, 48, 64, 128, 256, 512)
"""Sizes (px, square) of the app icon files ``textdrop-{size}.png``."""


def icon_path(name: str) -> Path:
    """The path of the icon file ``name`` (for example ``"textdrop-256.png"`` or ``"tray-busy.png"``).

    Found through :mod:`importlib.resources`, so it works from a source checkout, an installed wheel and a
    PyInstaller bundle that collects the PNGs as data files (all of which keep them on the file system).

    Raises:
        FileNotFoundError: there is no such icon file.
    """
    path = Path(str(files(__package__).joinpath(name)))
    if not path.is_file():
        raise FileNotFoundError(f"no icon {name!r} in {path.parent}")
    return path
