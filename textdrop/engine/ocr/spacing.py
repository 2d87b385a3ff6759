"""Spaces the recogniser dropped, put back from the gaps in a line's ink.

On small screen text (UI fonts at 12-13 px) PP-OCR's recogniser often reads two words as one where a
Chinese phrase meets a Latin word or number (``复制今天报告 Excel 项目`` → ``复制今天报告 Excel项目``). Its
CTC decoding still says where each character fired (the column of its first frame), so the blank stretch of
ink between two consecutive characters can be measured in the line crop and compared with the glyph height:
a space is about a quarter of an em wide, the side bearings of a Chinese character and a Latin letter less.
See ``docs/adr/019-screen-text-spacing.md`` for the figures behind the thresholds.
"""

from __future__ import annotations

import itertools
import logging
import unicodedata
from collections.abc import Sequence
from typing import Any

import numpy as np

log = logging.getLogger(__name__)

CJK_GAP = 0.21
"""Blank width, as a share of the line's glyph height, from which a Chinese–Latin boundary is a space.
Measured on the synthetic screens of ``benchmarks/screens.py`` (Noto Sans CJK at 12-13 px): boundaries
drawn with a space 0.19-0.52 (5th percentile 0.25), without one 0-0.23 (95th percentile 0.20).

Two Latin letters or digits are left as read. Their gaps say too little: in the synthetic screens, letter
gaps within words reach 0.32 of the glyph height and word spaces start at 0.19, and on scans (shared/eval/dev)
a threshold of 0.40 split 15 lines inside words: letter-spaced capitals (``R O O F S`` in a magazine caption)
and receipt print broken into dots (``WHOLEMEAL`` → ``WHOL EMEAL``). The recogniser read every Latin word
space of those screens."""

INK_COVERAGE = 0.5
"""A pixel column with a stroke at least this dark (0 background, 1 the line's ink) is not blank; the
anti-aliased fringe of a glyph adds the blank share it has (sub-pixel gap widths)."""


def is_cjk(char: str) -> bool:
    """True for a Han, kana or Hangul character (scripts written without spaces between words)."""
    name = unicodedata.name(char, "")
    return name.startswith(("CJK", "HIRAGANA", "KATAKANA", "HANGUL"))


def respace(text: str, crop: np.ndarray, columns: Sequence[int], frames: float) -> str:
    """``text`` with a space put back between each two characters whose ink gap is a word space.

    Args:
        text: the recogniser's reading of ``crop``.
        crop: the line image, shape (H, W, 3) uint8, any polarity (dark on light or light on dark).
        columns: the CTC frame at which each non-space character of ``text`` fired, in order.
        frames: how many CTC frames span the crop's width (RapidOCR's ``WordInfo.line_txt_len``).

    Returns:
        The text, unchanged where the frames do not match its characters or the crop has no ink.
    """
    chars = [c for c in text if not c.isspace()]
    if len(chars) != len(columns) or len(chars) < 2 or frames <= 0:
        return text
    if not any(_threshold(a, b) for a, b in itertools.pairwise(text)):
        return text  # no boundary where a space could go (every Latin-only line): the crop is not measured
    coverage = _coverage(crop)
    if coverage is None:
        return text
    profile, height = coverage
    scale = crop.shape[1] / frames
    out, index = [], 0
    for position, char in enumerate(text):
        out.append(char)
        if char.isspace():
            continue
        index += 1
        follower = text[position + 1] if position + 1 < len(text) else " "
        if index == len(chars) or follower.isspace():
            continue
        threshold = _threshold(char, follower)
        if threshold is None:
            continue
        left, right = (columns[index - 1] + 0.5) * scale, (columns[index] + 0.5) * scale
        if _widest_blank(profile, int(left), int(np.ceil(right))) >= threshold * height:
            out.append(" ")
    return "".join(out)


def respace_reading(text: str, crop: np.ndarray, word: Any) -> str:
    """:func:`respace` with the frames of a RapidOCR ``WordInfo`` (``return_word_box=True``)."""
    columns = [column for word_columns in word.word_cols for column in word_columns]
    return respace(text, crop, columns, word.line_txt_len)


def _threshold(left: str, right: str) -> float | None:
    """The gap share that makes a space between ``left`` and ``right``: :data:`CJK_GAP` where a CJK
    character meets a Latin letter or digit, else None (no space may go there)."""
    left_cjk, right_cjk = is_cjk(left), is_cjk(right)
    if left_cjk == right_cjk:
        return None  # Chinese and Japanese have no spaces between words; Latin gaps: see CJK_GAP
    return CJK_GAP if (right if left_cjk else left).isalnum() else None


def _coverage(crop: np.ndarray) -> tuple[np.ndarray, int] | None:
    """Per pixel column of ``crop``, the darkest stroke as a share of the ink (shape (W,), 0-1), and the
    glyph height in pixels (rows holding ink); None for a crop without two tones."""
    import cv2

    gray = crop.mean(axis=2).astype(np.uint8) if crop.ndim == 3 else crop
    _, binary = cv2.threshold(gray, 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    ink = binary > 0
    if ink.mean() > 0.5:  # the ink is the minority class: light text on a dark screen
        ink = ~ink
    if not ink.any() or ink.all():
        return None
    background, foreground = float(np.median(gray[~ink])), float(np.median(gray[ink]))
    if abs(foreground - background) < 1:
        return None
    share = np.clip((gray.astype(np.float32) - background) / (foreground - background), 0, 1)
    rows = np.flatnonzero(ink.any(axis=1))
    return share.max(axis=0), int(rows[-1] - rows[0] + 1)


def _widest_blank(profile: np.ndarray, start: int, stop: int) -> float:
    """Width in pixels (fractional) of the widest blank stretch of ``profile`` within ``[start, stop)``,
    counting the blank share of the anti-aliased columns on either side of it."""
    blank = 1.0 - profile
    widest, run = 0.0, 0.0
    for x in range(max(start, 0), min(stop, len(profile))):
        if profile[x] < INK_COVERAGE:
            run = (run or (blank[x - 1] if x > 0 else 0.0)) + blank[x]
            edge = blank[x + 1] if x + 1 < len(profile) and profile[x + 1] >= INK_COVERAGE else 0.0
            widest = max(widest, run + edge)
        else:
            run = 0.0
    return widest
