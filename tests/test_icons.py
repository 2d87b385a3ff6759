"""The icons rendered by ``assets/make_icons.py``: the committed files are there, have the sizes their
names say, the installers' .ico and .icns hold the sizes the platforms want, the tray variants really are
different, and re-running the script reproduces every image (decoded pixels, with a small tolerance: the
encoded bytes depend on the Pillow and Qt versions, the pictures must not)."""

from __future__ import annotations

import itertools
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image, ImageChops, ImageStat

from textdrop.desktop.icons import APP_ICON_SIZES, icon_path

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "assets" / "make_icons.py"
PACKAGING = ROOT / "packaging" / "icons"
TRAY_VARIANTS = ("tray-light", "tray-dark", "tray-busy")


def open_rgba(path: Path) -> Image.Image:
    """The PNG at ``path`` as a loaded RGBA image (checking it is a PNG)."""
    with Image.open(path) as image:
        assert image.format == "PNG", path
        return image.convert("RGBA")


def opaque_brightness(image: Image.Image) -> float:
    """Mean grey level (0–255) of the mostly opaque pixels of ``image``."""
    mask = image.getchannel("A").point(lambda alpha: 255 if alpha > 128 else 0)
    return ImageStat.Stat(image.convert("L"), mask=mask).mean[0]


@pytest.mark.parametrize("size", APP_ICON_SIZES)
def test_app_icon_is_a_png_of_its_named_size(size: int) -> None:
    """``textdrop-{size}.png`` is a ``size``×``size`` RGBA PNG with a transparent corner (rounded square)."""
    image = open_rgba(icon_path(f"textdrop-{size}.png"))
    assert image.size == (size, size)
    assert image.getpixel((0, 0))[3] == 0
    assert image.getpixel((size // 2, size // 2))[3] == 255


def test_tray_variants_are_64_px_and_differ() -> None:
    """The three tray icons are 64×64, no two alike; the glyph for light panels is darker than the one for
    dark panels."""
    images = {name: open_rgba(icon_path(f"{name}.png")) for name in TRAY_VARIANTS}
    for name, image in images.items():
        assert image.size == (64, 64), name
    for (name_a, a), (name_b, b) in itertools.combinations(images.items(), 2):
        assert a.tobytes() != b.tobytes(), f"{name_a} and {name_b} have the same pixels"
    assert opaque_brightness(images["tray-light"]) < 100 < opaque_brightness(images["tray-dark"])


def test_icon_path_of_a_missing_icon_raises() -> None:
    """Asking for an icon that is not there fails loudly, naming it."""
    with pytest.raises(FileNotFoundError, match="no-such-icon"):
        icon_path("no-such-icon.png")


def test_ico_holds_16_to_256_px() -> None:
    """The Windows icon holds every size from 16 to 256 px."""
    with Image.open(PACKAGING / "textdrop.ico") as ico:
        assert ico.format == "ICO"
        assert {(s, s) for s in (16, 24, 32, 48, 64, 128, 256)} <= set(ico.info["sizes"])
        assert ico.size == (256, 256)


def test_icns_holds_512_px_or_larger() -> None:
    """The macOS icon opens with Pillow, and its largest image is at least 512 px."""
    with Image.open(PACKAGING / "textdrop.icns") as icns:
        assert icns.format == "ICNS"
        icns.load()
        assert icns.size[0] >= 512
        assert icns.size[0] == icns.size[1]


def decoded_frames(path: Path) -> dict[tuple[int, int], Image.Image]:
    """Every image stored in the PNG, .ico or .icns at ``path``, decoded to RGBA, keyed by its size in
    pixels (an .icns may hold a size twice, at 1x and 2x: the larger wins, as Pillow's loader does)."""
    with Image.open(path) as image:
        if image.format == "ICO":
            return {size: image.ico.getimage(size).convert("RGBA") for size in image.ico.sizes()}
        if image.format == "ICNS":
            frames = {}
            for width, height, scale in sorted(image.icns.itersizes()):
                frame = image.icns.getimage((width, height, scale)).convert("RGBA")
                frames[frame.size] = frame
            return frames
        return {image.size: image.convert("RGBA")}


def pixel_difference(a: Image.Image, b: Image.Image) -> tuple[float, int]:
    """Mean and largest absolute difference (0–255) over every channel of two same-sized RGBA images."""
    diff = ImageChops.difference(a, b)
    mean = sum(ImageStat.Stat(diff).mean) / 4
    return mean, max(high for _, high in diff.getextrema())


def test_script_reproduces_the_committed_files(tmp_path: Path) -> None:
    """Running the script into an empty folder writes exactly the committed files, and each holds the same
    images at the same sizes: per image, a mean channel difference under 1 level and none over 32 (an
    anti-aliasing change between Qt or Pillow releases moves edge pixels a little; a changed drawing or
    colour moves far more)."""
    pytest.importorskip("PySide6.QtSvg", reason="the script renders with QtSvg (the desktop extra)")
    run = subprocess.run(
        [sys.executable, str(SCRIPT), "--out-root", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert run.returncode == 0, run.stderr
    written = sorted(path.relative_to(tmp_path).as_posix() for path in tmp_path.rglob("*") if path.is_file())
    expected = sorted(
        [f"textdrop/desktop/icons/textdrop-{size}.png" for size in APP_ICON_SIZES]
        + [f"textdrop/desktop/icons/{name}.png" for name in TRAY_VARIANTS]
        + ["packaging/icons/textdrop.ico", "packaging/icons/textdrop.icns"]
    )
    assert written == expected
    for relative in written:
        assert relative in run.stdout, f"the script did not report {relative}"
        fresh, committed = decoded_frames(tmp_path / relative), decoded_frames(ROOT / relative)
        assert sorted(fresh) == sorted(committed), relative
        for size, image in committed.items():
            mean, largest = pixel_difference(fresh[size], image)
            assert mean < 1.0 and largest <= 32, f"{relative} at {size}: mean {mean:.2f}, max {largest}"
