"""Synthetic document pages drawn with PIL: columns, titles, figures, tables, headers and footers.

Every paragraph is made of words that say where they stand (``west1 west1 ...``), so a test can assert
the reading order of a page from the order of those words in the recognised text.
"""

from __future__ import annotations

import random
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

FONTS = Path("/usr/share/fonts/truetype/dejavu")

WORDS = [
    *("the", "river", "valley", "holds", "old", "stone", "bridges", "and", "quiet", "towns", "where"),
    *("market", "days", "bring", "farmers", "with", "bread", "cheese", "apples", "honey", "wool", "and"),
    *("news", "from", "the", "hills", "beyond", "the", "northern", "forest"),
]


def font(size: int, bold: bool = False) -> ImageFont.FreeTypeFont:
    """DejaVu Serif (bold) at ``size`` pixels (the Debian fonts-dejavu-core package)."""
    return ImageFont.truetype(str(FONTS / ("DejaVuSerif-Bold.ttf" if bold else "DejaVuSerif.ttf")), size)


class Page:
    """A white page to draw on; sizes in pixels (a 200-dpi A4 page is 1654 × 2339)."""

    def __init__(self, width: int = 1654, height: int = 2339, seed: int = 1) -> None:
        self.image = Image.new("RGB", (width, height), "white")
        self.draw = ImageDraw.Draw(self.image)
        self.random = random.Random(seed)
        self.body = font(30)

    def paragraph(self, marker: str, x: int, y: int, width: int, lines: int, size: int = 30) -> int:
        """Prose whose first word on each line is ``marker``, filling ``width``; returns the y below."""
        face = font(size)
        step = round(size * 1.55)
        for _ in range(lines):
            words = [marker]
            while True:
                candidate = [*words, self.random.choice(WORDS)]
                if self.draw.textlength(" ".join(candidate), font=face) > width:
                    break
                words = candidate
            self.draw.text((x, y), " ".join(words), font=face, fill="black")
            y += step
        return y + step // 2

    def title(self, text: str, x: int, y: int, size: int = 64) -> int:
        """A bold heading; returns the y below it."""
        self.draw.text((x, y), text, font=font(size, bold=True), fill="black")
        return y + int(size * 1.8)

    def line(self, text: str, x: int, y: int, size: int = 30) -> None:
        self.draw.text((x, y), text, font=font(size), fill="black")

    def picture(self, box: tuple[int, int, int, int]) -> None:
        """A photograph-like rectangle: shaded bands and circles, no text."""
        x0, y0, x1, y1 = box
        for i, top in enumerate(range(y0, y1, 24)):
            shade = 90 + (i * 37) % 120
            self.draw.rectangle((x0, top, x1, min(y1, top + 24)), fill=(shade, shade - 30, 200 - shade // 2))
        for _ in range(6):
            cx = self.random.randint(x0 + 60, x1 - 60)
            cy = self.random.randint(y0 + 60, y1 - 60)
            self.draw.ellipse((cx - 50, cy - 50, cx + 50, cy + 50), fill=(240, 200, 40))

    def table(
        self,
        x: int,
        y: int,
        widths: list[int],
        rows: list[list[str]],
        ruled: bool,
        height: int = 56,
    ) -> int:
        """A table of ``rows`` (first one the header) with column ``widths``; returns the y below it.

        A cell may hold several lines (``"\\n"``); ``height`` must then leave room for them.
        """
        bold = font(30, bold=True)
        for r, row in enumerate(rows):
            left = x
            for width, cell in zip(widths, row, strict=True):
                face = bold if r == 0 else self.body
                self.draw.multiline_text((left + 14, y + r * height + 12), cell, font=face, fill="black")
                left += width
        bottom = y + len(rows) * height
        if ruled:
            right = x + sum(widths)
            for r in range(len(rows) + 1):
                self.draw.line((x, y + r * height, right, y + r * height), fill="black", width=3)
            left = x
            for width in [0, *widths]:
                left += width
                self.draw.line((left, y, left, bottom), fill="black", width=3)
        return bottom + 40

    def save(self, path: Path) -> Path:
        self.image.save(path)
        return path
