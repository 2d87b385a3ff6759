"""Spaces on small screen text: word gaps put back from the ink between characters (ocr/spacing.py)."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFont

from tests.helpers.fonts import font_path
from textdrop.engine import RecognizeOptions
from textdrop.engine.ocr import spacing
from textdrop.engine.ocr.rapid import RapidEngine

SPACED = [
    "安全复制 v2.1 通知评论打开 Wi-Fi 声音音乐保存 3.12 文档扩展编辑 JSON",
    "复制今天报告 Excel 项目导出",
    "标签导入 USB 分享",
    "打开 Settings 设置 Wi-Fi 网络",
]
"""Lines from the screens of benchmarks/screens.py that the recogniser alone reads with spaces dropped at
12 px, 13 px or both (安全复制v2.1通知评论打开 Wi-Fi声音…, 复制今天报告 Excel项目导出, 标签导入USB分享)."""
UNSPACED = ["保存到Downloads文件夹", "打开Settings设置Wi-Fi网络", "使用Python3.12运行"]


@pytest.fixture(scope="module")
def engine() -> RapidEngine:
    engine = RapidEngine()
    engine.load()
    return engine


def screen(lines: list[str], size: int, dark: bool = False) -> Image.Image:
    """UI text at ``size`` px in Noto Sans CJK, one line per 1.8 × size rows."""
    face = ImageFont.truetype(font_path("NotoSansCJK-Regular.ttc"), size)
    step = round(size * 1.8)
    image = Image.new("RGB", (640, 16 + step * len(lines)), (30, 30, 30) if dark else (250, 250, 250))
    draw = ImageDraw.Draw(image)
    for row, text in enumerate(lines):
        draw.text((12, 8 + row * step), text, font=face, fill=(230, 230, 230) if dark else (20, 20, 20))
    return image


@pytest.mark.parametrize(("size", "dark"), [(12, False), (13, True)])
def test_spaces_between_chinese_and_latin_words_are_kept(engine: RapidEngine, size: int, dark: bool) -> None:
    page = engine.recognize_page(screen(SPACED, size, dark), RecognizeOptions())
    assert [line.text for line in page.lines] == SPACED


def test_no_space_is_added_where_the_screen_has_none(engine: RapidEngine) -> None:
    page = engine.recognize_page(screen(UNSPACED, 12), RecognizeOptions())
    assert [line.text for line in page.lines] == UNSPACED


def ink_line(blocks: list[tuple[int, int]], height: int = 14) -> np.ndarray:
    """A white crop, shape (height + 4, 200, 3), with black glyph blocks spanning ``[x0, x1)``."""
    crop = np.full((height + 4, 200, 3), 255, np.uint8)
    for x0, x1 in blocks:
        crop[2 : 2 + height, x0:x1] = 0
    return crop


def test_a_gap_of_a_third_of_the_glyph_height_between_chinese_and_latin_is_a_space() -> None:
    crop = ink_line([(10, 24), (29, 37), (38, 46)])  # 5 px gap, then 1 px: 14 px tall glyphs
    # frames: one per 4 px (50 across the crop); each character fires in its block's middle
    assert spacing.respace("中ab", crop, [4, 8, 10], 50) == "中 ab"
    assert spacing.respace("中ab", ink_line([(10, 24), (26, 37), (38, 46)]), [4, 8, 10], 50) == "中ab"


def test_latin_pairs_keep_their_reading_and_chinese_pairs_never_get_a_space() -> None:
    crop = ink_line([(10, 24), (29, 37), (45, 53)])  # 5 px (0.36 of the height), then 8 px (0.57)
    assert spacing.respace("中ab", crop, [4, 8, 12], 50) == "中 ab"  # letter-spaced or broken print: no
    assert spacing.respace("中文b", crop, [4, 8, 12], 50) == "中文 b"
    assert spacing.respace("a中b", crop, [4, 8, 12], 50) == "a 中 b"
    assert spacing.respace("中(b", crop, [4, 8, 12], 50) == "中(b"  # punctuation: left as read
    assert spacing.respace("中.b", crop, [4, 8, 12], 50) == "中.b"


def test_light_text_on_a_dark_screen_is_measured_as_ink() -> None:
    crop = 255 - ink_line([(10, 24), (29, 37)])
    assert spacing.respace("中a", crop, [4, 8], 50) == "中 a"


def test_frames_that_do_not_match_the_text_leave_it_as_read() -> None:
    crop = ink_line([(10, 24), (29, 37)])
    assert spacing.respace("中a", crop, [4], 50) == "中a"
