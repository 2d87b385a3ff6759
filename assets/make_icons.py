"""Render all of textdrop's icons from the one source drawing, ``assets/icons/textdrop.svg``.

What it writes (paths under ``--out-root``, the repository root unless told otherwise):

* ``textdrop/desktop/icons/textdrop-{16,32,48,64,128,256,512}.png``: the app icon (window icon, about box);
  package data that the app loads at run time through :func:`textdrop.desktop.icons.icon_path`.
* ``textdrop/desktop/icons/tray-{light,dark,busy}.png`` (64×64): the tray icon. ``light`` is a dark glyph
  for light panels, ``dark`` a light glyph for dark panels, ``busy`` the full icon on amber while the
  engine works.
* ``packaging/icons/textdrop.ico`` (16–256 px, for Windows) and ``packaging/icons/textdrop.icns``
  (32–1024 px, for macOS), for the installers.

Why a script: one SVG stays the only drawing; every PNG is rendered at its own size (no downscaled
blur at 16 px), the tray variants are the same drawing recoloured (:data:`VARIANTS` swaps the SVG's three
fill colours and, for the tray glyphs, zooms the view box onto the page), and re-running it gives
byte-identical files, so a changed icon shows up in ``git diff`` only when the drawing changed.

How to run, from the repository root (needs the ``desktop`` extra for PySide6; renders offscreen, so no
display is needed)::

    .venv/bin/python assets/make_icons.py [--out-root DIR]
"""

from __future__ import annotations

import argparse
import io
import os
import sys
from dataclasses import dataclass
from pathlib import Path

from PIL import Image

SOURCE = Path(__file__).resolve().parent / "icons" / "textdrop.svg"
"""The one source drawing."""

REPO_ROOT = Path(__file__).resolve().parent.parent
"""The default ``--out-root``."""

PACKAGE_DIR = Path("textdrop/desktop/icons")
"""Where the app's PNGs go (package data), relative to the output root."""

PACKAGING_DIR = Path("packaging/icons")
"""Where the installers' .ico and .icns go, relative to the output root."""

APP_SIZES = (16, 32, 48, 64, 128, 256, 512)
"""Sizes of the app icon PNGs (``textdrop.desktop.icons.APP_ICON_SIZES`` names the same)."""

TRAY_SIZE = 64
"""Width and height of the tray icon PNGs; the desktop scales them down to the panel's size."""

ICO_SIZES = (16, 24, 32, 48, 64, 128, 256)
"""Frames of the Windows .ico (256 is the largest an .ico holds)."""

ICNS_SIZES = (32, 64, 128, 256, 512, 1024)
"""Images the macOS .icns is written from (Pillow's writer stores ic07–ic14: 32 to 1024 px)."""

SOURCE_FILLS = ("#2b6cb0", "#ffffff", "#bee3f8")
"""The SVG's fill colours, in order: the rounded square, the page, the folded corner."""

SOURCE_VIEW_BOX = "0 0 64 64"
"""The SVG's view box: the whole rounded square."""

GLYPH_VIEW_BOX = "10 10 44 44"
"""A view box around the page alone (x 16–48, y 12–52), for the tray glyphs without the square."""

BUSY_VIEW_BOX = "2 2 60 60"
"""A view box close around the rounded square, so the busy tray icon is about as large as the glyphs."""


@dataclass(frozen=True)
class Variant:
    """A recolouring of the source drawing: the three fills (``"none"`` leaves a shape out) and the view
    box to render."""

    square: str
    page: str
    corner: str
    view_box: str = SOURCE_VIEW_BOX

    @property
    def fills(self) -> tuple[str, str, str]:
        """The three fills, in the order of :data:`SOURCE_FILLS`."""
        return (self.square, self.page, self.corner)


VARIANTS = {
    "app": Variant(square="#2b6cb0", page="#ffffff", corner="#bee3f8"),
    # a dark page glyph for light panels; the "T" is a hole in the page, so the panel shows through it
    "tray-light": Variant(square="none", page="#1f2937", corner="#6b7280", view_box=GLYPH_VIEW_BOX),
    # a light page glyph for dark panels
    "tray-dark": Variant(square="none", page="#f3f4f6", corner="#9ca3af", view_box=GLYPH_VIEW_BOX),
    # the full icon on amber: the engine is working
    "tray-busy": Variant(square="#d08700", page="#ffffff", corner="#fbe2a8", view_box=BUSY_VIEW_BOX),
}
"""Every rendering of the source drawing, by name."""


def variant_svg(source: str, variant: Variant) -> bytes:
    """The source SVG text recoloured (and re-framed) as ``variant``, as UTF-8 bytes.

    Raises:
        ValueError: the source no longer has exactly one of each fill colour or the expected view box
            (the drawing changed; update :data:`SOURCE_FILLS`).
    """
    text = source
    for old, new in zip(SOURCE_FILLS, variant.fills, strict=True):
        needle = f'fill="{old}"'
        if text.count(needle) != 1:
            raise ValueError(f"{SOURCE.name} should have exactly one {needle}")
        text = text.replace(needle, f'fill="{new}"')
    needle = f'viewBox="{SOURCE_VIEW_BOX}"'
    if text.count(needle) != 1:
        raise ValueError(f"{SOURCE.name} should have {needle}")
    return text.replace(needle, f'viewBox="{variant.view_box}"').encode()


class Renderer:
    """Renders SVG bytes to PNG bytes with QtSvg, offscreen. Make one after :func:`start_qt`."""

    def png(self, svg: bytes, size: int) -> bytes:
        """``svg`` rendered at ``size``×``size`` px (antialiased, transparent background) as PNG bytes.

        Raises:
            ValueError: QtSvg could not parse ``svg``.
            OSError: Qt could not encode the PNG.
        """
        from PySide6.QtCore import QBuffer, QByteArray, QIODevice, QRectF, Qt
        from PySide6.QtGui import QImage, QPainter
        from PySide6.QtSvg import QSvgRenderer

        renderer = QSvgRenderer(QByteArray(svg))
        if not renderer.isValid():
            raise ValueError("QtSvg could not parse the SVG")
        image = QImage(size, size, QImage.Format.Format_ARGB32_Premultiplied)
        image.fill(Qt.GlobalColor.transparent)
        painter = QPainter(image)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform)
        renderer.render(painter, QRectF(0, 0, size, size))
        painter.end()
        image = image.convertToFormat(QImage.Format.Format_ARGB32)
        data = QByteArray()
        buffer = QBuffer(data)
        buffer.open(QIODevice.OpenModeFlag.WriteOnly)
        if not image.save(buffer, "PNG"):
            raise OSError("Qt could not encode a PNG")
        buffer.close()
        return bytes(data.data())


def start_qt() -> object:
    """A QGuiApplication on the offscreen platform (no display needed); keep it alive while rendering."""
    os.environ["QT_QPA_PLATFORM"] = "offscreen"
    from PySide6.QtGui import QGuiApplication

    return QGuiApplication.instance() or QGuiApplication([sys.argv[0]])


def pillow_image(png: bytes) -> Image.Image:
    """PNG bytes as a loaded RGBA Pillow image."""
    with Image.open(io.BytesIO(png)) as image:
        return image.convert("RGBA")


def write(path: Path, data: bytes, out_root: Path, what: str) -> None:
    """Write ``data`` to ``path`` (making its folder) and print the path, ``what`` it holds and its size."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    print(f"{path.relative_to(out_root).as_posix():42} {what:34} {len(data):>8,} bytes")


def make_icons(out_root: Path) -> list[Path]:
    """Render every icon under ``out_root``; returns the paths written."""
    source = SOURCE.read_text(encoding="utf-8")
    _app = start_qt()
    renderer = Renderer()
    written: list[Path] = []

    app_svg = variant_svg(source, VARIANTS["app"])
    app_png = {size: renderer.png(app_svg, size) for size in sorted({*APP_SIZES, *ICO_SIZES, *ICNS_SIZES})}

    for size in APP_SIZES:
        path = out_root / PACKAGE_DIR / f"textdrop-{size}.png"
        write(path, app_png[size], out_root, f"{size}×{size} PNG")
        written.append(path)

    for name, variant in VARIANTS.items():
        if name == "app":
            continue
        path = out_root / PACKAGE_DIR / f"{name}.png"
        png = renderer.png(variant_svg(source, variant), TRAY_SIZE)
        write(path, png, out_root, f"{TRAY_SIZE}×{TRAY_SIZE} PNG")
        written.append(path)

    ico = io.BytesIO()
    largest, *others = (pillow_image(app_png[size]) for size in sorted(ICO_SIZES, reverse=True))
    largest.save(ico, format="ICO", sizes=[(size, size) for size in ICO_SIZES], append_images=others)
    path = out_root / PACKAGING_DIR / "textdrop.ico"
    write(path, ico.getvalue(), out_root, f"ICO {', '.join(map(str, ICO_SIZES))} px")
    written.append(path)

    icns = io.BytesIO()
    largest, *others = (pillow_image(app_png[size]) for size in sorted(ICNS_SIZES, reverse=True))
    largest.save(icns, format="ICNS", append_images=others)
    path = out_root / PACKAGING_DIR / "textdrop.icns"
    write(path, icns.getvalue(), out_root, f"ICNS {', '.join(map(str, ICNS_SIZES))} px")
    written.append(path)
    return written


def main(argv: list[str] | None = None) -> int:
    """Parse the command line and render the icons."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--out-root",
        type=Path,
        default=REPO_ROOT,
        help="write under this folder instead of the repository root (default: %(default)s)",
    )
    args = parser.parse_args(argv)
    make_icons(args.out_root.resolve())
    return 0


if __name__ == "__main__":
    sys.exit(main())
