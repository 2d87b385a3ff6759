"""Reading order and Markdown for line-based engines: text lines with pixel boxes → blocks → Markdown.

A line-based engine (the embedded RapidOCR backend) returns boxes, not reading order. Joining boxes row by
row scrambles multi-column pages, so the page is segmented with a recursive XY-cut (Nagy & Seth, 1984):
a region is split at its widest vertical whitespace gap (a column gutter) into regions read left to right,
else at its widest horizontal gap into regions read top to bottom, until each region is a single row.

A vertical split is refused when the two sides are *row-aligned* and neither side is prose: most lines on
one side share their vertical position with a line on the other, as in receipts, forms and tables. Those
regions are read row by row (a person reads "Total ... 12.00" as one line) and become Markdown tables.
Prose columns are split even when their baselines line up, as they do on typeset pages.

The leaves (rows of lines, left to right) are then grouped into paragraphs by vertical gaps, and rendered
as headings (tall lines), bullet items, tables or paragraphs. All thresholds are in units of the page's
median line height, so they hold at any DPI; the values were chosen on ``shared/eval/dev`` as a whole
(``docs/adr/003-reading-order.md``).
"""

from __future__ import annotations

import re
import statistics
from dataclasses import dataclass, field
from itertools import count, pairwise

from textdrop.engine.result import Line

GUTTER = 0.6
"""Narrowest vertical gap, in median line heights, that can separate two columns."""

PROSE_GUTTER = 0.1
"""Narrowest vertical gap, in median line heights, between two columns of running text: a magazine's
gutter can be narrower than the padding of the detector's boxes leaves visible."""

GUTTER_REACH = 3.0
"""How far above and below a line, in median line heights, :func:`split_at_gutters` looks for the lines
that show a gutter through it."""

WIDE_BLANK = 1.75
"""How many times its line's median word space a blank must be to be a gutter. Measured from the CTC frames
(6-10 px each on 2000-3300 px pages): a tight magazine gutter 2.0 times, a sentence under a table whose
cells leave gaps above it 1.5 times (one frame wider than the median)."""

SLACK_SHARE = 0.25
"""How far, in median line heights, a line's box may reach over a gutter: detector boxes are padded."""

ALIGNED = 0.7
"""Share of the smaller side's lines that must face a line on the other side for rows to be aligned."""

CROSSING = 0.1
"""Largest share of a region's lines that may cross a column gutter (captions, pull quotes)."""

PROSE_WORDS = 4.0
"""Mean words per line from which a side with at least :data:`PROSE_LINES` lines counts as prose."""

PROSE_LINES = 4

BLOCK_GAP = 1.5
"""Blank space, in median line heights, between the stacks of a grid of multi-line blocks."""

PARAGRAPH_GAP = 1.0
"""Vertical gap between the middle halves of two rows (see :func:`_core`), in median line heights, from
which a new paragraph starts: about 0.5 between consecutive lines of a paragraph, 1.5 across a blank line."""

TABLE_GAP = 4.0
"""Highest blank space, in line heights, between two rows of one table; a wider one ends it (a key-value
sidebar and a chart's axis label far below it are not one table)."""

SPANNING = 0.6
"""A line in a table at least this share of the table's width spans its columns (a title row, a banner):
the columns are found without it, and it takes the cell where it starts."""

HEADING_SIZE = 1.5
"""A short paragraph whose lines are this many times the median line height is a heading."""

BULLET = re.compile(r"^[•●○◦▪■□·∙*–-]\s+")
MARKDOWN_START = re.compile(r"^([#>+=]|-{3,}|\d+[.)]\s)")


@dataclass
class Row:
    """Lines sharing one visual line, left to right; ``table`` is the id of the table it belongs to."""

    lines: list[Line]
    table: int | None = None

    @property
    def box(self) -> tuple[int, int, int, int]:
        return _extent(self.lines)

    @property
    def text(self) -> str:
        return " ".join(line.text for line in self.lines)


@dataclass
class Block:
    """A paragraph, heading, list or table: consecutive rows in reading order."""

    rows: list[Row] = field(default_factory=list)
    kind: str = "paragraph"  # paragraph | heading | table


@dataclass
class WordGaps:
    """A recognised line and the blanks between its words: ``(characters before it, left x, right x)``,
    x in page pixels, non-space characters counted."""

    line: Line
    gaps: list[tuple[int, float, float]] = field(default_factory=list)


def split_at_gutters(read: list[WordGaps]) -> list[Line]:
    """The lines, each split where it runs across a column gutter.

    The text detector sometimes joins the first lines of two columns whose gutter is narrow (a magazine
    page: ``She sighed. She cause of her sadness.``). A blank between two words is a gutter when it is
    :data:`WIDE_BLANK` times the line's median word space or wider (the line has three blanks or more), and
    the lines just above and below the line (within :data:`GUTTER_REACH` line heights, overlapping it) lie
    on one side of it or the other, none across it (by more than :data:`SLACK_SHARE` of a line height), with
    some on each side. Within a paragraph the neighbouring lines run across every blank.

    Returns:
        The lines in the same order; a split line is replaced by its parts, boxes cut at the blank.
    """
    lines = [item.line for item in read]
    unit = line_unit(lines)
    out: list[Line] = []
    for item in read:
        line, cuts = item.line, []
        widths = [right - left for _, left, right in item.gaps]
        space = statistics.median(widths) if len(widths) >= 3 else 0.0
        wide = [gap for gap in item.gaps if space and gap[2] - gap[1] >= WIDE_BLANK * space]
        near = [
            other.bbox
            for other in (lines if wide else [])
            if other is not line
            and abs((other.bbox[1] + other.bbox[3]) - (line.bbox[1] + line.bbox[3])) / 2
            <= GUTTER_REACH * unit
            and _v_overlap(other.bbox, line.bbox) < 0.5
            and min(other.bbox[2], line.bbox[2]) > max(other.bbox[0], line.bbox[0])
        ]
        slack = SLACK_SHARE * unit
        for before, left, right in wide:
            middle = (left + right) / 2
            if any(box[0] < middle - slack and box[2] > middle + slack for box in near):
                continue
            if any(box[2] <= middle + slack for box in near) and any(
                box[0] >= middle - slack for box in near
            ):
                cuts.append((before, left, right))
        out.extend(_split(line, cuts))
    return out


def _split(line: Line, cuts: list[tuple[int, float, float]]) -> list[Line]:
    """``line`` cut at the blanks ``cuts`` (see :class:`WordGaps`) into lines with their own boxes."""
    positions = [index for index, char in enumerate(line.text) if not char.isspace()]
    parts, start, begin = [], 0, line.bbox[0]
    for before, left, right in cuts:
        end = positions[before - 1] + 1
        parts.append((line.text[start:end].strip(), begin, round(left)))
        start, begin = end, round(right)
    parts.append((line.text[start:].strip(), begin, line.bbox[2]))
    _, top, _, bottom = line.bbox
    return [Line(text, (left, top, right, bottom), line.confidence) for text, left, right in parts if text]


def compose(lines: list[Line], width: int, height: int) -> tuple[list[Line], str, str]:
    """Order a page's lines as a person reads them and render them.

    Args:
        lines: recognised lines in any order, boxes in pixels of a ``width`` × ``height`` page.
        width: page width in pixels.
        height: page height in pixels.

    Returns:
        ``(ordered_lines, markdown, text)``: the lines in reading order, the page as Markdown, and the page
        as plain text (one visual line per line, blank lines between blocks, no Markdown syntax).
    """
    if not lines:
        return [], "", ""
    blocks = order_blocks(lines, line_unit(lines))
    ordered = [line for block in blocks for row in block.rows for line in row.lines]
    markdown = "\n\n".join(block_markdown(block) for block in blocks) + "\n"
    text = "\n\n".join(block_text(block) for block in blocks) + "\n"
    return ordered, markdown, text


def line_unit(lines: list[Line]) -> float:
    """The median line height of ``lines`` in pixels (1 when none): the unit of every threshold here."""
    return (statistics.median(line.height for line in lines) or 1.0) if lines else 1.0


def order_blocks(lines: list[Line], unit: float) -> list[Block]:
    """``lines`` (at least one) as blocks in reading order, by XY-cut; ``unit``: see :func:`line_unit`."""
    rows: list[Row] = []
    _cut(lines, unit or 1, rows, count(), table=None)
    return _blocks(rows, unit or 1)


def block_text(block: Block) -> str:
    """A block as plain text: one visual line per line."""
    return "\n".join(row.text for row in block.rows)


def rows_of(lines: list[Line]) -> list[Row]:
    """Lines grouped into visual rows, top to bottom, each left to right (no column detection)."""
    return _rows(lines, None)


def _extent(lines: list[Line]) -> tuple[int, int, int, int]:
    return (
        min(line.bbox[0] for line in lines),
        min(line.bbox[1] for line in lines),
        max(line.bbox[2] for line in lines),
        max(line.bbox[3] for line in lines),
    )


def _widest_gap(spans: list[tuple[int, int]]) -> tuple[int, float] | None:
    """The widest uncovered interval between 1-D spans, as ``(cut position, width)``; None if covered."""
    spans = sorted(spans)
    best, reach = None, spans[0][1]
    for start, end in spans[1:]:
        if start > reach and (best is None or start - reach > best[1]):
            best = ((reach + start) // 2, start - reach)
        reach = max(reach, end)
    return best


def _cut(lines: list[Line], unit: float, out: list[Row], ids: count, table: int | None) -> None:
    """Recursive XY-cut; appends the leaf rows of ``lines`` to ``out`` in reading order."""
    if len(lines) > 1:
        split = _gutter(lines, unit)
        if split is not None:
            left, right = split
            if _card_grid(left, right, unit):
                table = None
            elif table is None and _row_aligned(left, right, unit):
                table = next(ids)
            if table is None:
                _cut(left, unit, out, ids, table)
                _cut(right, unit, out, ids, table)
                return
        gap = _widest_gap([_core(line) for line in lines])
        if gap:
            _cut([line for line in lines if _core(line)[1] <= gap[0]], unit, out, ids, table)
            _cut([line for line in lines if _core(line)[0] >= gap[0]], unit, out, ids, table)
            return
    out.extend(_rows(lines, table))


def _core(line: Line) -> tuple[float, float]:
    """The middle half of a line's box vertically: detector boxes are padded and overlap their neighbours."""
    quarter = line.height / 4
    return line.bbox[1] + quarter, line.bbox[3] - quarter


def _gutter(lines: list[Line], unit: float) -> tuple[list[Line], list[Line]] | None:
    """Split at the best column gutter: the vertical whitespace, at least :data:`GUTTER` wide, that the
    fewest lines cross. Lines may cross it (at most :data:`CROSSING` of them, e.g. a caption set across
    two columns) only when both sides are prose.

    Returns ``(left, right)`` with crossing lines assigned by their centre, or None when there is no gutter.
    """
    edges = sorted({x for line in lines for x in (line.bbox[0], line.bbox[2])})
    best = None
    for start, end in pairwise(edges):
        middle = (start + end) / 2
        left = [line for line in lines if line.bbox[2] <= start]
        right = [line for line in lines if line.bbox[0] >= end]
        crossing = len(lines) - len(left) - len(right)
        if not left or not right:
            continue
        if crossing and (crossing > CROSSING * len(lines) or not (is_prose(left) and is_prose(right))):
            continue
        width = min(line.bbox[0] for line in right) - max(line.bbox[2] for line in left)
        if width < (PROSE_GUTTER if is_prose(left) and is_prose(right) else GUTTER) * unit:
            continue
        key = (crossing, -width)
        if best is None or key < best[0]:
            best = (key, middle)
    if best is None:
        return None
    middle = best[1]
    left = [line for line in lines if (line.bbox[0] + line.bbox[2]) / 2 < middle]
    return left, [line for line in lines if (line.bbox[0] + line.bbox[2]) / 2 >= middle]


def _rows(lines: list[Line], table: int | None) -> list[Row]:
    """Group lines whose boxes overlap vertically into rows, top to bottom, each left to right."""
    rows: list[list[Line]] = []
    for line in sorted(lines, key=lambda item: (item.bbox[1] + item.bbox[3]) / 2):
        if rows and _v_overlap(line.bbox, _extent(rows[-1])) >= 0.5:
            rows[-1].append(line)
        else:
            rows.append([line])
    return [Row(sorted(row, key=lambda item: item.bbox[0]), table) for row in rows]


def _v_overlap(a: tuple[int, int, int, int], b: tuple[int, int, int, int]) -> float:
    """Vertical overlap of two boxes as a share of the smaller height."""
    inter = min(a[3], b[3]) - max(a[1], b[1])
    return max(0, inter) / max(1, min(a[3] - a[1], b[3] - b[1]))


def is_prose(lines: list[Line]) -> bool:
    """True for :data:`PROSE_LINES` or more lines of :data:`PROSE_WORDS` or more words on average."""
    if len(lines) < PROSE_LINES:
        return False
    return statistics.mean(len(line.text.split()) for line in lines) >= PROSE_WORDS


def _row_aligned(left: list[Line], right: list[Line], unit: float) -> bool:
    """True when the two sides of a candidate column split are the cells of shared rows (not columns).

    That is, :data:`ALIGNED` of one side's lines share a row with a line of the other side or continue
    such a line (right below it, within :data:`PARAGRAPH_GAP`, overlapping it: the lines of an address
    written beside the label "Counsel:" are one cell); the labels of empty fields need not. Neither side
    may be running text: :func:`is_prose` with a median of :data:`PROSE_WORDS` words or more per line (a
    form's values have a long line or two among short ones, which lift the mean).
    """
    if any(
        is_prose(side) and statistics.median(len(line.text.split()) for line in side) >= PROSE_WORDS
        for side in (left, right)
    ):
        return False
    if min(len(left), len(right)) == 1 < max(len(left), len(right)):
        return False
    return max(_share_on_rows(left, right, unit), _share_on_rows(right, left, unit)) >= ALIGNED


def _share_on_rows(side: list[Line], other: list[Line], unit: float) -> float:
    """Share of ``side``'s lines that share a row with a line of ``other`` or continue such a line."""
    counted: list[Line] = []
    for line in sorted(side, key=lambda item: item.bbox[1]):
        faces = any(_v_overlap(line.bbox, beside.bbox) >= 0.5 for beside in other)
        continues = any(
            -0.5 * unit <= line.bbox[1] - above.bbox[3] <= PARAGRAPH_GAP * unit
            and min(line.bbox[2], above.bbox[2]) > max(line.bbox[0], above.bbox[0])
            for above in counted
        )
        if faces or continues:
            counted.append(line)
    return len(counted) / len(side)


def _stacks(lines: list[Line], unit: float) -> list[list[Line]]:
    """The lines in stacks, top to bottom: runs of lines less than :data:`BLOCK_GAP` apart."""
    stacks: list[list[Line]] = []
    for line in sorted(lines, key=lambda item: item.bbox[1]):
        if stacks and _core(line)[0] - max(_core(item)[1] for item in stacks[-1]) < BLOCK_GAP * unit:
            stacks[-1].append(line)
        else:
            stacks.append([line])
    return stacks


def _card_grid(left: list[Line], right: list[Line], unit: float) -> bool:
    """True when both sides form two or more stacks of at least two lines, separated by blank space at
    least :data:`BLOCK_GAP` high, and the stacks pair up across the split (as many on each side, each beside
    its partner): boxes of an organisation chart or a grid of cards, read stack by stack. A form's labels
    and values stack differently (two labels beside a one-line value, one beside an address)."""
    sides = [_stacks(left, unit), _stacks(right, unit)]
    if any(len(stacks) < 2 or any(len(stack) < 2 for stack in stacks) for stacks in sides):
        return False
    if len(sides[0]) != len(sides[1]):
        return False
    return all(
        min(_extent(a)[3], _extent(b)[3]) > max(_extent(a)[1], _extent(b)[1])
        for a, b in zip(*sides, strict=True)
    )


def _blocks(rows: list[Row], unit: float) -> list[Block]:
    """Group consecutive rows into blocks: tables by their id, paragraphs by vertical gap and overlap."""
    blocks: list[Block] = []
    for row in rows:
        last = blocks[-1].rows[-1] if blocks else None
        if last is not None and _continues(last, row, unit):
            blocks[-1].rows.append(row)
        else:
            blocks.append(Block([row]))
    for block in blocks:
        if block.rows[0].table is not None and len(block.rows) > 1:
            block.kind = "table"
        elif len(block.rows) <= 2 and _row_height(block.rows) >= HEADING_SIZE * unit:
            block.kind = "heading"
    return blocks


def _row_height(rows: list[Row]) -> float:
    return statistics.median(line.height for row in rows for line in row.lines)


def _continues(prev: Row, row: Row, unit: float) -> bool:
    """True when ``row`` belongs to the same block as the row before it."""
    if prev.table != row.table:
        return False
    gap = min(_core(line)[0] for line in row.lines) - max(_core(line)[1] for line in prev.lines)
    if row.table is not None:
        return gap <= TABLE_GAP * unit
    a, b = prev.box, row.box
    if gap > PARAGRAPH_GAP * unit or min(a[2], b[2]) <= max(a[0], b[0]):
        return False
    ratio = _row_height([prev]) / max(1, _row_height([row]))
    return 1 / HEADING_SIZE < ratio < HEADING_SIZE


def _escape(text: str) -> str:
    """Backslash-escape what Markdown would read as syntax at the start of a line."""
    return "\\" + text if MARKDOWN_START.match(text) else text


def block_markdown(block: Block) -> str:
    """A block as Markdown: a paragraph, list, ``##`` heading or table."""
    if block.kind == "table":
        return table_markdown(block.rows)
    if block.kind == "heading":
        return "## " + " ".join(row.text for row in block.rows)
    out = []
    for row in block.rows:
        text = row.text
        bullet = BULLET.match(text)
        out.append("- " + text[bullet.end() :] if bullet else _escape(text))
    return "\n".join(out)


def table_markdown(rows: list[Row], cuts: list[float] | None = None) -> str:
    """A Markdown table read row by row; the first row heads it.

    Args:
        rows: the table's rows, top to bottom.
        cuts: x positions in pixels of a ruled table's vertical rules, or None. The columns are split
            there and at the vertical gaps shared by the rows' cells (columns a rule does not divide), less
            lines across :data:`SPANNING` of the table's width (a title row, a banner over the columns);
            :data:`CROSSING` of the rows may have a cell across a gap (a long label). A cell across a
            cut takes the column where it starts.

    Returns:
        The table, or its rows as lines of text when they have no columns (one cell is not a table).
    """
    lines = [line for row in rows for line in row.lines]
    left, _, right, _ = _extent(lines)
    cells = [line for line in lines if line.bbox[2] - line.bbox[0] < SPANNING * (right - left)]
    gaps = column_gaps(cells, int(CROSSING * len(rows))) if cells else []
    centres = [(line.bbox[0] + line.bbox[2]) / 2 for line in lines]

    def apart(gap: float, rule: float) -> bool:
        """True when cells lie between a gap and a rule: they divide different columns."""
        return any(min(gap, rule) < centre < max(gap, rule) for centre in centres)

    cuts = gaps if cuts is None else sorted(cuts + [g for g in gaps if all(apart(g, rule) for rule in cuts)])
    if not cuts:
        return "\n".join(_escape(row.text) for row in rows)
    table = []
    for row in rows:
        columns = [""] * (len(cuts) + 1)
        for line in row.lines:  # by its left edge (less the detector's padding): a long label stays left
            start = min((line.bbox[0] + line.bbox[2]) / 2, line.bbox[0] + line.height / 2)
            index = sum(start > cut for cut in cuts)
            columns[index] = (columns[index] + " " + line.text.replace("|", "\\|")).strip()
        table.append("| " + " | ".join(columns) + " |")
    table.insert(1, "|" + "---|" * (len(cuts) + 1))
    return "\n".join(table)


def column_gaps(lines: list[Line], crossing: int = 0) -> list[float]:
    """x positions in pixels of the vertical gaps between columns of ``lines``, left to right.

    A gap is a run of x positions that at most ``crossing`` lines cover (0: none), with line centres on
    both sides of it and between it and the next gap (no column is empty).
    """
    events = sorted([(line.bbox[0], 1) for line in lines] + [(line.bbox[2], -1) for line in lines])
    runs: list[tuple[float, float]] = []
    depth, start = 0, None
    for x, step in events:
        depth += step
        if depth <= crossing and start is None:
            start = x
        elif depth > crossing and start is not None:
            if x > start:
                runs.append((start, x))
            start = None
    centres = sorted((line.bbox[0] + line.bbox[2]) / 2 for line in lines)
    cuts: list[float] = []
    for first, last in runs:
        middle = (first + last) / 2
        filled = any(c < middle and (not cuts or c > cuts[-1]) for c in centres)  # the column it closes
        if filled and any(c > middle for c in centres):
            cuts.append(middle)
    return cuts


def join_rows(lines: list[Line]) -> str:
    """Lines joined row by row (top to bottom, each row left to right), with no column detection.

    This is the naive order that :func:`compose` improves on; ``textdrop bench --compare-raw`` uses it as
    the baseline.
    """
    return "\n".join(row.text for row in _rows(lines, None))
