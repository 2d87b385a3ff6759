"""Reading order from layout regions: text lines → regions → ordered units → Markdown and text.

The layout model (:mod:`textdrop.engine.ocr.layout_model`) finds regions (text, titles, figures, tables,
captions, headers, footers); this module reads a page through them (``docs/adr/010-layout.md``):

1. **Assignment**: each line goes to the region holding most of its box (at least :data:`INSIDE` of it);
   lines in no region are grouped into blocks by the geometric XY-cut of :mod:`textdrop.engine.ocr.layout`,
   so a page where the model finds nothing (a receipt, a screenshot) reads as before.
2. **Units**: a caption joins the figure or table it belongs to (the nearest one that overlaps it
   horizontally); headers and footers are kept apart.
3. **Order**: an XY-cut on the units' boxes. A region is split at a column gutter that no unit crosses;
   where a full-width unit (a title, a figure across columns) blocks every gutter, it is cut off above and
   below, and the bands between are read top to bottom, each by columns again.
4. **Rendering**: a title becomes a heading, a figure a ``[Figure]`` placeholder with its caption (the
   text inside it is kept), a table a Markdown table read row by row (cells from its rules when it is
   ruled, from the column gaps of its lines when not), headers and footers HTML comments at the top and
   bottom of the Markdown (first and last in the plain text). Other regions are read by
   :func:`textdrop.engine.ocr.layout.order_blocks`.
"""

from __future__ import annotations

import logging
import statistics
from dataclasses import dataclass, field
from itertools import pairwise
from typing import TYPE_CHECKING, NamedTuple

import numpy as np

from textdrop.engine.ocr.layout import (
    ALIGNED,
    PROSE_LINES,
    Block,
    Row,
    block_markdown,
    block_text,
    column_gaps,
    is_prose,
    line_unit,
    order_blocks,
    rows_of,
    table_markdown,
)
from textdrop.engine.result import Line

if TYPE_CHECKING:
    from textdrop.engine.ocr.layout_model import Region

log = logging.getLogger(__name__)

INSIDE = 0.5
"""Share of a line's box area (its middle half, see :func:`_core`) that must lie in a region for the line
to belong to it."""

SLACK = 0.3
"""How far, in median line heights, a unit may reach over a gutter or a band cut without crossing it:
the model's boxes are loose by a few pixels."""

RULE_SHARE = 0.5
"""A horizontal (vertical) rule of a table is a straight dark run at least this share of the table's
width (height) long. Shorter strokes are letters."""

NESTED = 0.8
"""A region with at least this share of its area inside another is part of it (text blocks the model
also finds inside a figure or a table)."""

SAME_KIND = 0.5
"""A region with at least this share of its area inside a larger one of the same kind is a second guess at
part of it (a title box over the first two lines of a paragraph the model also calls a title)."""

WIDE = 0.6
"""A unit across a column gutter at least this share of its region's width breaks the columns (a title, a
figure or table set across the page)."""

MARGIN = 0.2
"""Widest share of a two-column "table" that its narrow column may take for it to be prose with line
numbers or margin notes (a transcript, a filing) rather than a table."""

FILLED = 0.75
"""Share of a column's width that most lines of running text fill (ragged-right lines included), and
share of the lines that fill it."""

ON_ROW = 0.2
"""Farthest distance, in line heights, between the centres of two lines set on one row (a label and its
value); detector boxes of one row differ by a few pixels."""

FRAMED_ROWS = 8
"""Fewest visual rows in every band between a ruled table's horizontal rules for the rules to frame text
rather than divide rows: twice :data:`~textdrop.engine.ocr.layout.PROSE_LINES`, more than a wrapped cell
holds."""

CAPTION_DISTANCE = 3.0
"""Farthest distance, in median line heights, between a caption and the figure or table it belongs to."""

PARAGRAPH_GAP = 1.5
"""Farthest vertical gap, in median line heights, between a region and a line just above or below it that
the model's box left out."""

PAGE_FIGURE = 0.5
"""A figure holding at least this share of the page's lines and of the area they span is the page itself
(a chart, a slide, a form): it gets no placeholder, and its lines are read as lines in no region. A smaller
figure full of short lines (a box of financial tables under a report's text) stays a figure."""

APART = ("header", "footer")


class Rules(NamedTuple):
    """The straight rules :func:`_rules` finds in a table region, in page pixels."""

    rows: list[float]
    """y positions of its horizontal rules, top to bottom."""
    columns: list[float]
    """x positions of its vertical rules, left to right."""
    span: tuple[int, int] | None
    """``(left, right)`` of its horizontal rules together: the table's width when it is ruled across; None
    without horizontal rules."""


@dataclass
class Unit:
    """Lines read together: a region with its caption, or a block of lines in no region."""

    kind: str
    box: tuple[int, int, int, int]
    lines: list[Line] = field(default_factory=list)
    caption: list[Line] = field(default_factory=list)
    blocks: list[Block] = field(default_factory=list)
    seq: int = 0


def compose_regions(
    lines: list[Line], regions: list[Region], gray: np.ndarray | None = None
) -> tuple[list[Line], str, str]:
    """Order a page's lines by its layout regions and render them.

    Args:
        lines: recognised lines in any order, boxes in pixels of the page.
        regions: the layout model's regions, boxes in pixels of the same page.
        gray: the page as a (height, width) uint8 image, to find the rules of ruled tables; None: tables
            are split at the gaps of their lines only.

    Returns:
        ``(ordered_lines, markdown, text)`` as :func:`textdrop.engine.ocr.layout.compose` returns them.
    """
    if not lines:
        return [], "", ""
    unit = line_unit(lines)
    units = _units(lines, regions, unit)
    if gray is not None:
        units = [part for u in units for part in (_beside_rules(u, gray, unit) if u.kind == "table" else [u])]
    markdown: dict[str, list[str]] = {"header": [], "body": [], "footer": []}
    text: dict[str, list[str]] = {"header": [], "body": [], "footer": []}
    ordered: dict[str, list[Line]] = {"header": [], "body": [], "footer": []}
    for kind in APART:
        for item in sorted((u for u in units if u.kind == kind), key=lambda u: u.box[0]):
            for block in order_blocks(item.lines, unit):
                text[kind].append(block_text(block))
                ordered[kind].extend(line for row in block.rows for line in row.lines)
        if text[kind]:
            joined = " ".join(text[kind]).replace("\n", " ").replace("--", "—")
            markdown[kind].append(f"<!-- {kind}: {joined} -->")
    for item in _order([u for u in units if u.kind not in APART], unit):
        item_markdown, item_text, item_lines = _render(item, unit, gray)
        markdown["body"].append(item_markdown)
        text["body"].extend(item_text)
        ordered["body"].extend(item_lines)
    parts = [*markdown["header"], *markdown["body"], *markdown["footer"]]
    paragraphs = [*text["header"], *text["body"], *text["footer"]]
    return (
        [*ordered["header"], *ordered["body"], *ordered["footer"]],
        "\n\n".join(part for part in parts if part) + "\n",
        "\n\n".join(part for part in paragraphs if part) + "\n",
    )


def _area(box: tuple[int, int, int, int]) -> int:
    return max(0, box[2] - box[0]) * max(0, box[3] - box[1])


def _overlap(a: tuple[int, int, int, int], b: tuple[int, int, int, int]) -> int:
    return _area((max(a[0], b[0]), max(a[1], b[1]), min(a[2], b[2]), min(a[3], b[3])))


def _extent(boxes: list[tuple[int, int, int, int]]) -> tuple[int, int, int, int]:
    return (
        min(b[0] for b in boxes),
        min(b[1] for b in boxes),
        max(b[2] for b in boxes),
        max(b[3] for b in boxes),
    )


def _units(lines: list[Line], regions: list[Region], unit: float) -> list[Unit]:
    """Lines assigned to regions, captions joined to their figure or table, loose lines as blocks."""
    units = [Unit(region.kind, region.bbox) for region in _outermost(regions)]
    loose = []
    for line in lines:
        core = _core(line)
        shares = [
            (_overlap(core, u.box) / max(1, _area(core)), -_area(u.box), i) for i, u in enumerate(units)
        ]
        best = max(shares, default=None)
        if best is None or best[0] < INSIDE:
            loose.append(line)
        else:
            units[best[2]].lines.append(line)
    page = _area(_extent([line.bbox for line in lines]))
    for u in units:
        if (
            u.kind == "figure"
            and len(u.lines) >= PAGE_FIGURE * len(lines)
            and _area(u.box) >= PAGE_FIGURE * page
        ):
            loose.extend(u.lines)  # a chart, slide or form the model calls a picture: read its lines
            u.lines = []
            u.kind = "dropped"
    units = [u for u in units if u.lines or u.kind == "figure"]
    for u in units:
        if u.kind == "title" and is_prose(u.lines):
            u.kind = "text"  # running text the model calls a title (a page of one paragraph)
    loose = _running_lines(loose, units)
    for caption in [u for u in units if u.kind.endswith("_caption")]:
        owner = _owner(caption, [u for u in units if u.kind == caption.kind.removesuffix("_caption")], unit)
        if owner is None:
            caption.kind = "text"
        else:
            owner.caption.extend(caption.lines)
            owner.box = _extent([owner.box, caption.box])
            units.remove(caption)
    for u in units:  # a region's box is as wide as what it holds, so its neighbours' gutters stay free
        if u.lines and u.kind != "figure":
            u.box = _extent([line.bbox for line in u.lines + u.caption])
    for seq, block in enumerate(order_blocks(loose, unit) if loose else []):
        block_lines = [line for row in block.rows for line in row.lines]
        box = _extent([line.bbox for line in block_lines])
        beside = _row_partner(block_lines, box, units, unit) if len(block_lines) < PROSE_LINES else None
        if beside is None:
            units.append(Unit("loose", box, block_lines, blocks=[block], seq=seq))
        else:  # the model left out one side of a form's rows: read them with the other side
            beside.lines.extend(block_lines)
            beside.box = _extent([beside.box, box])
    return units


def _running_lines(loose: list[Line], units: list[Unit]) -> list[Line]:
    """Lines in no region that belong to a header or footer beside them; the others are returned.

    The model often boxes only part of a running header or footer (the page number at the right of a fax
    header). A loose line joins such a unit when it shares the rows of one of its lines (half the lower
    one's height) and lies wholly above (header) or below (footer) every other region with lines.
    """
    body = [u for u in units if u.kind not in APART and u.lines]
    top = min((u.box[1] for u in body), default=None)
    bottom = max((u.box[3] for u in body), default=None)
    rest = []
    for line in loose:
        owner = next(
            (
                u
                for u in units
                if u.kind in APART
                and any(_shared_height(line.bbox, other.bbox) >= 0.5 for other in u.lines)
                and (top is None or (line.bbox[3] <= top if u.kind == "header" else line.bbox[1] >= bottom))
            ),
            None,
        )
        if owner is None:
            rest.append(line)
        else:
            owner.lines.append(line)
    return rest


def _core(line: Line) -> tuple[int, int, int, int]:
    """A line's box less a quarter of its height at top and bottom: the detector pads its boxes, the
    layout model's are tight."""
    x0, y0, x1, y1 = line.bbox
    quarter = (y1 - y0) // 4
    return x0, y0 + quarter, x1, y1 - quarter


def _outermost(regions: list[Region]) -> list[Region]:
    """Regions less those lying within another (at least :data:`NESTED` of their area, :data:`SAME_KIND`
    within one of their own kind); of two near-equal boxes (the same block called a figure and a caption)
    the more specific kind, then the better scored one is kept."""
    kept: list[Region] = []
    for region in sorted(regions, key=lambda r: -_area(r.bbox)):
        holder = next(
            (
                k
                for k in kept
                if _overlap(region.bbox, k.bbox)
                >= (SAME_KIND if k.kind == region.kind else NESTED) * max(1, _area(region.bbox))
            ),
            None,
        )
        if holder is None:
            kept.append(region)
        elif _area(region.bbox) >= NESTED * _area(holder.bbox) and _rank(region) > _rank(holder):
            kept[kept.index(holder)] = region
    return kept


def _rank(region: Region) -> tuple[bool, float]:
    """Preference between two regions of one block: any kind over plain text, then the score."""
    return region.kind != "text", region.score


def _row_partner(
    block: list[Line], box: tuple[int, int, int, int], units: list[Unit], unit: float
) -> Unit | None:
    """The unit a block of lines in no region belongs to, if any.

    That is a text or table unit whose box (grown to its lines) holds the block; else the text unit right
    above or below it (a line the model's box left out); else the nearest text or table unit beside it,
    with nothing between, whose lines share the rows of most of the block's lines (the other side of a
    form, the labels the model left out of a table).
    """
    for u in units:
        if u.kind in ("text", "table") and _overlap(box, u.box) >= INSIDE * max(1, _area(box)):
            return u
    best = None
    for u in units:
        if u.kind not in ("text", "table"):
            continue
        width = min(u.box[2], box[2]) - max(u.box[0], box[0])
        if width >= 0.5 * (box[2] - box[0]):
            close = max(u.box[1] - box[3], box[1] - u.box[3]) <= PARAGRAPH_GAP * unit
            if close and u.kind == "text":
                return u
            continue
        if width > 0:
            continue
        facing = sum(any(_shared_height(line.bbox, other.bbox) >= 0.5 for other in u.lines) for line in block)
        distance = max(u.box[0] - box[2], box[0] - u.box[2])
        if facing * 2 > len(block) and (best is None or distance < best[0]):
            best = (distance, u)
    if best is None:
        return None
    partner = best[1]
    span = (min(box[2], partner.box[2]), max(box[0], partner.box[0]))
    for u in units:  # nothing may stand between them
        between = span[0] <= (u.box[0] + u.box[2]) / 2 <= span[1]
        if u is not partner and between and min(u.box[3], box[3]) > max(u.box[1], box[1]):
            return None
    return partner


def _shared_height(a: tuple[int, int, int, int], b: tuple[int, int, int, int]) -> float:
    """Vertical overlap of two boxes as a share of the lower one's height."""
    return max(0, min(a[3], b[3]) - max(a[1], b[1])) / max(1, min(a[3] - a[1], b[3] - b[1]))


def _owner(caption: Unit, owners: list[Unit], unit: float) -> Unit | None:
    """The figure or table nearest to ``caption`` that overlaps it horizontally, within reach."""
    best = None
    for owner in owners:
        if min(caption.box[2], owner.box[2]) <= max(caption.box[0], owner.box[0]):
            continue
        distance = max(0, caption.box[1] - owner.box[3], owner.box[1] - caption.box[3])
        if distance <= CAPTION_DISTANCE * unit and (best is None or distance < best[0]):
            best = (distance, owner)
    return best[1] if best else None


def _order(units: list[Unit], unit: float) -> list[Unit]:
    """Units in reading order by a recursive XY-cut on their boxes (see the module docstring)."""
    if all(u.kind == "loose" for u in units):  # where the model saw nothing, the lines' geometry decides
        return sorted(units, key=lambda u: u.seq)
    slack = SLACK * unit
    crossing, cut = _best_gutter(units, slack)
    if cut is not None and not any(_breaks_columns(u, units, slack) for u in crossing):
        left = [u for u in units if (u.box[0] + u.box[2]) / 2 < cut]
        right = [u for u in units if (u.box[0] + u.box[2]) / 2 >= cut]
        if left and right:
            return _order(left, unit) + _order(right, unit)
    gaps = _row_gaps(units, slack)
    beside = [  # the gaps just above and below the units that break the columns
        gap
        for gap in gaps
        if any(abs(u.box[3] - slack - gap[0]) <= 1 or abs(u.box[1] + slack - gap[1]) <= 1 for u in crossing)
    ]
    gaps = beside or gaps
    bands: list[list[Unit]] = [[] for _ in range(len(gaps) + 1)]
    for u in units:
        middle = (u.box[1] + u.box[3]) / 2
        bands[sum(middle > (start + end) / 2 for start, end in gaps)].append(u)
    bands = [band for band in bands if band]
    if len(bands) <= 1:
        return sorted(units, key=lambda u: (u.box[1], u.box[0]))
    return [item for band in bands for item in _order(band, unit)]


def _breaks_columns(item: Unit, units: list[Unit], slack: float) -> bool:
    """True when ``item``, lying across a column gutter, ends the columns above it and starts new ones
    below: it is at least :data:`WIDE` of the region's width, or nothing lies above it or below it (a
    title, a banner). A narrower unit with columns above and below (a picture set into the gutter of a
    magazine page) is read within the column that holds its centre."""
    left = min(u.box[0] for u in units)
    right = max(u.box[2] for u in units)
    if item.box[2] - item.box[0] >= WIDE * (right - left):
        return True
    above = any(u.box[3] - slack <= item.box[1] + slack for u in units if u is not item)
    below = any(u.box[1] + slack >= item.box[3] - slack for u in units if u is not item)
    return not (above and below)


def _best_gutter(units: list[Unit], slack: float) -> tuple[list[Unit], float | None]:
    """The x position, with units wholly on both sides, that the fewest units cross, and those units."""
    edges = sorted({x for u in units for x in (u.box[0], u.box[2])})
    best: tuple[list[Unit], float | None] = ([], None)
    for start, end in pairwise(edges):
        x = (start + end) / 2
        left = any(u.box[2] - slack <= x for u in units)
        right = any(u.box[0] + slack >= x for u in units)
        if not (left and right):
            continue
        crossing = [u for u in units if u.box[0] + slack < x < u.box[2] - slack]
        if best[1] is None or len(crossing) < len(best[0]):
            best = (crossing, x)
    if best[1] is not None and len(best[0]) * 2 > len(units):
        return [], None  # most units cross it: no column structure here
    return best


def _row_gaps(units: list[Unit], slack: float) -> list[tuple[float, float]]:
    """Horizontal bands ``(top, bottom)`` in pixels that no unit covers (boxes shrunk by ``slack``)."""
    spans = sorted((u.box[1] + slack, u.box[3] - slack) for u in units)
    gaps, reach = [], spans[0][1]
    for start, end in spans[1:]:
        if start > reach:
            gaps.append((reach, start))
        reach = max(reach, end)
    return gaps


def _beside_rules(table: Unit, gray: np.ndarray, unit: float) -> list[Unit]:
    """A table region less the lines beside its horizontal rules, which become text units of their own.

    The model sometimes boxes a ruled table together with a column of text beside it (a report's financial
    statements with the company profile to their right); the rules run across the table only. Lines wholly
    left or right of the rules (by more than :data:`SLACK` line heights) are split off when no line crosses
    the rules' ends, at least two lines stay in the table, and the lines of a side are a column of their
    own: :data:`~textdrop.engine.ocr.layout.PROSE_LINES` or more, not set on the table's rows (a form's
    labels beside the underlines of its fields are, see :func:`_on_rows_of`).
    """
    span = _rules(gray, table.box).span
    if span is None:
        return [table]
    reach = (span[0] - SLACK * unit, span[1] + SLACK * unit)
    sides: dict[str, list[Line]] = {"left": [], "inside": [], "right": []}
    for line in table.lines:
        if line.bbox[2] <= reach[0]:
            sides["left"].append(line)
        elif line.bbox[0] >= reach[1]:
            sides["right"].append(line)
        elif reach[0] <= line.bbox[0] and line.bbox[2] <= reach[1]:
            sides["inside"].append(line)
        else:
            return [table]  # a line across the rules' end: the rules do not bound the table
    for side in ("left", "right"):  # a form's labels or values beside its underlines stay in it
        if len(sides[side]) < PROSE_LINES or _on_rows_of(sides[side], sides["inside"], unit):
            sides["inside"].extend(sides[side])
            sides[side] = []
    if not (sides["left"] or sides["right"]) or len(sides["inside"]) < 2:
        return [table]
    table.lines = sides["inside"]
    table.box = _extent([line.bbox for line in table.lines + table.caption])
    beside = [
        Unit("text", _extent([line.bbox for line in side]), side)
        for side in (sides["left"], sides["right"])
        if side
    ]
    return [table, *beside]


def _on_rows_of(side: list[Line], table: list[Line], unit: float) -> bool:
    """True when most lines of ``side`` (:data:`~textdrop.engine.ocr.layout.ALIGNED` of them) are centred on
    a line of ``table`` (within :data:`ON_ROW` line heights): a form's labels and their values. A column of
    text beside a table keeps its own line pitch, so only some of its lines meet a row by chance."""
    centres = [(line.bbox[1] + line.bbox[3]) / 2 for line in table]
    on = sum(
        any(abs((line.bbox[1] + line.bbox[3]) / 2 - c) <= ON_ROW * unit for c in centres) for line in side
    )
    return on >= ALIGNED * len(side)


def _render(item: Unit, unit: float, gray: np.ndarray | None) -> tuple[str, list[str], list[Line]]:
    """A unit as ``(markdown, text paragraphs, lines in reading order)``."""
    caption = order_blocks(item.caption, unit) if item.caption else []
    if item.kind == "table":
        rows, cuts, framed = _table_cells(item, gray)
        columns = _prose_columns(item.lines, cuts, framed)
        if columns is None:
            return _render_table(rows, cuts, caption, item.caption)
        blocks = [block for column in columns for block in order_blocks(column, unit)]
    else:
        blocks = item.blocks or (order_blocks(item.lines, unit) if item.lines else [])
    top = min((row.box[1] for b in blocks for row in b.rows), default=None)
    above = [b for b in caption if top is not None and b.rows[-1].box[3] <= top]
    reading = above + blocks + [b for b in caption if b not in above]  # captions where they stand
    lines = [line for b in reading for row in b.rows for line in row.lines]
    texts = [block_text(b) for b in reading]
    if item.kind == "title":
        return "## " + " ".join(text.replace("\n", " ") for text in texts), texts, lines
    if item.kind == "figure":
        label = " ".join(block_text(b).replace("\n", " ") for b in caption)
        parts = [f"*[Figure{': ' + label if label else ''}]*"] + [block_markdown(b) for b in blocks]
        return "\n\n".join(parts), texts, lines
    return "\n\n".join(block_markdown(b) for b in reading), texts, lines


def _render_table(
    rows: list[Row], cuts: list[float] | None, caption: list[Block], caption_lines: list[Line]
) -> tuple[str, list[str], list[Line]]:
    """A table read row by row, with its caption above or below it as on the page."""
    table_lines = [line for row in rows for line in row.lines]
    above = bool(caption_lines) and caption_lines[0].bbox[1] < min(line.bbox[1] for line in table_lines)
    parts = [block_markdown(b) for b in caption]
    texts = [block_text(b) for b in caption]
    lines = [line for b in caption for row in b.rows for line in row.lines]
    table, text = table_markdown(rows, cuts), "\n".join(row.text for row in rows)
    if above:
        return "\n\n".join([*parts, table]), [*texts, text], lines + table_lines
    return "\n\n".join([table, *parts]), [text, *texts], table_lines + lines


def _prose_columns(
    lines: list[Line], cuts: list[float] | None, framed: bool = False
) -> list[list[Line]] | None:
    """The columns, left to right, of a "table" that is really columns of prose; None for a table.

    Prose columns: two or more of its columns are running text (unruled, or ``framed``: the rules box
    pages of text, as on a transcript printed four pages to a sheet), or it is two columns, one running
    text and the other narrow (at most :data:`MARGIN` of the width: numbered lines of a transcript, margin
    notes). ``cuts``: x positions of its vertical rules, or None: its gaps. A ruled table with wordy
    columns whose rules divide its rows is still a table.
    """
    bounds = column_gaps(lines) if cuts is None else cuts
    by_index: dict[int, list[Line]] = {}
    for line in lines:
        by_index.setdefault(sum((line.bbox[0] + line.bbox[2]) / 2 > x for x in bounds), []).append(line)
    columns = [by_index[index] for index in sorted(by_index)]
    prose = [column for column in columns if is_prose(column) or _fills_measure(column)]
    if len(prose) >= 2 and (cuts is None or framed):
        return columns
    if len(columns) != 2 or len(prose) != 1:
        return None
    margin = next(column for column in columns if column is not prose[0])
    page, side = _extent([line.bbox for line in lines]), _extent([line.bbox for line in margin])
    return columns if side[2] - side[0] <= MARGIN * (page[2] - page[0]) else None


def _fills_measure(lines: list[Line]) -> bool:
    """True for a column of running text: :data:`PROSE_LINES` or more lines of 3+ words on average, most
    of them (:data:`FILLED` of the lines) at least :data:`FILLED` of the column's width. Table cells
    vary in width or hold one or two words."""
    if len(lines) < PROSE_LINES or statistics.mean(len(line.text.split()) for line in lines) < 3:
        return False
    left, _, right, _ = _extent([line.bbox for line in lines])
    full = sum(line.bbox[2] - line.bbox[0] >= FILLED * (right - left) for line in lines)
    return full >= FILLED * len(lines)


def _table_cells(item: Unit, gray: np.ndarray | None) -> tuple[list[Row], list[float] | None, bool]:
    """The table's rows and column cuts: from its rules when ruled, else from its lines' gaps (None).

    A band between two horizontal rules is one row, its cells' wrapped lines kept together, unless two or
    more of its visual rows have cells in two or more columns: then the rules group rows (a header rule,
    a total rule) and the band's visual rows are the table's rows.

    Returns:
        ``(rows, cuts, framed)``; ``framed``: it has horizontal and vertical rules and every band between
        its horizontal rules holds at least :data:`FRAMED_ROWS` visual rows (boxes around text, not rows).
    """
    rows_y, rules_x, _ = _rules(gray, item.box) if gray is not None else Rules([], [], None)
    centres = [(line.bbox[0] + line.bbox[2]) / 2 for line in item.lines]
    cuts_x: list[float] = []
    for x in rules_x:  # only rules with cells on both sides: the frame and double rules divide nothing
        divides = any(c < x for c in centres) and any(c > x for c in centres)
        if divides and (not cuts_x or any(cuts_x[-1] < c < x for c in centres)):
            cuts_x.append(x)
    if not cuts_x:
        return rows_of(item.lines), None, False
    if not rows_y:  # a grid of columns without row rules
        return rows_of(item.lines), cuts_x, False
    cells: dict[int, list[Line]] = {}
    for line in item.lines:
        middle = (line.bbox[1] + line.bbox[3]) / 2
        cells.setdefault(sum(middle > y for y in rows_y), []).append(line)

    def column(line: Line) -> int:
        return sum((line.bbox[0] + line.bbox[2]) / 2 > x for x in cuts_x)

    rows, framed = [], True
    for index in sorted(cells):
        visual = rows_of(cells[index])
        framed = framed and len(visual) >= FRAMED_ROWS
        if sum(len({column(line) for line in row.lines}) >= 2 for row in visual) >= 2:
            rows.extend(visual)  # rules around groups of rows, not around each row: the rows are visual
        else:  # lines wrapped inside one cell: each cell top to bottom, the cells left to right
            row_of = {id(line): number for number, row in enumerate(visual) for line in row.lines}
            rows.append(
                Row(sorted(cells[index], key=lambda line: (column(line), row_of[id(line)], line.bbox[0])))
            )
    return rows, cuts_x, framed


def _rules(gray: np.ndarray, box: tuple[int, int, int, int]) -> Rules:
    """A table's rules, in page pixels (see :class:`Rules`).

    Dark strokes are found by Otsu thresholding, then opened with a long thin kernel (OpenCV's
    morphological line extraction): what survives is a straight run at least :data:`RULE_SHARE` of the
    table's width or height.
    """
    import cv2

    x0, y0, x1, y1 = box
    left, top = max(0, x0 - 4), max(0, y0 - 4)
    crop = gray[top : y1 + 4, left : x1 + 4]
    if crop.size == 0:
        return Rules([], [], None)
    _, ink = cv2.threshold(crop, 0, 255, cv2.THRESH_BINARY_INV + cv2.THRESH_OTSU)
    found, span = [], None
    for axis, length in ((1, crop.shape[1]), (0, crop.shape[0])):
        size = max(8, int(length * RULE_SHARE))
        kernel = cv2.getStructuringElement(cv2.MORPH_RECT, (size, 1) if axis == 1 else (1, size))
        strokes = cv2.morphologyEx(ink, cv2.MORPH_OPEN, kernel) > 0
        profile = strokes.sum(axis=axis) >= size
        positions, run = [], []
        for index, on in enumerate(profile):
            if on:
                run.append(index)
            elif run:
                positions.append((run[0] + run[-1]) / 2)
                run = []
        if run:
            positions.append((run[0] + run[-1]) / 2)
        found.append([(top if axis == 1 else left) + p for p in positions])
        if axis == 1 and positions:
            columns = np.flatnonzero(strokes.any(axis=0))
            span = (left + int(columns[0]), left + int(columns[-1]))
    return Rules(found[0], found[1], span)
