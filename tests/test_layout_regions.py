"""Reading order through layout regions, on synthetic pages drawn with PIL and read by the real engine.

Each page's paragraphs start every line with a marker word (``alpha``, ``bravo``…), so the order of the
markers in the recognised text is the reading order. The pages are the kinds of ``docs/adr/010-layout.md``:
columns under a full-width title, a figure breaking a column, ruled and borderless tables, a table beside
a text column, a header and a footer; and a page turned by 90 and 180 degrees.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import yaml
from PIL import Image, ImageDraw

from tests.helpers.pages import Page, font
from textdrop.cli import run
from textdrop.engine import recognize
from textdrop.engine.ocr.layout import WordGaps, compose, split_at_gutters
from textdrop.engine.ocr.layout_model import LayoutModel, Region
from textdrop.engine.ocr.rapid import RapidEngine
from textdrop.engine.ocr.regions import compose_regions
from textdrop.engine.registry import RecognizeOptions
from textdrop.engine.result import Line, OcrResult

pytestmark = pytest.mark.slow

MARKERS = ("alpha", "bravo", "charlie", "delta")

PRICES = [
    ["Item", "Origin", "Price"],
    ["apples", "north farm", "12.50"],
    ["honey", "hill village", "8.00"],
    ["cheese", "river town", "15.25"],
    ["wool", "east meadow", "30.00"],
]


def marker_runs(text: str) -> list[str]:
    """The markers of the text's lines in order, each run of one marker counted once."""
    runs: list[str] = []
    for line in text.splitlines():
        first = line.split()[0] if line.split() else ""
        if first in MARKERS and (not runs or runs[-1] != first):
            runs.append(first)
    return runs


def lines_of(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.strip()]


@pytest.fixture(scope="module")
def engine() -> Iterator[RapidEngine]:
    backend = RapidEngine()
    backend.load()
    yield backend
    backend.close()


@pytest.fixture
def read(engine: RapidEngine, tmp_path: Path):
    def read(page: Page, layout: bool = True) -> OcrResult:
        return recognize(
            page.save(tmp_path / "page.png"), engine=engine, options=RecognizeOptions(layout=layout)
        )

    return read


def two_columns() -> Page:
    page = Page()
    top = page.title("Harvest Report Summary", 120, 120)
    page.paragraph("alpha", 120, top, 660, 12)
    page.paragraph("bravo", 120, top + 600, 660, 12)
    page.paragraph("charlie", 870, top, 660, 12)
    page.paragraph("delta", 870, top + 600, 660, 12)
    return page


def test_two_columns_under_a_full_width_title_are_read_column_by_column(read) -> None:
    result = read(two_columns())
    (page,) = result.pages
    assert page.layout == "regions"
    assert lines_of(result.text)[0] == "Harvest Report Summary"
    assert result.markdown.startswith("## Harvest Report Summary")
    assert marker_runs(result.text) == ["alpha", "bravo", "charlie", "delta"]


def test_four_narrow_columns_are_read_one_after_the_other(read) -> None:
    page = Page()
    top = page.title("Valley Gazette Weekly", 120, 120, size=80)
    for index, marker in enumerate(MARKERS):
        page.paragraph(marker, 110 + index * 365, top, 330, 36, size=24)
    result = read(page)
    assert lines_of(result.text)[0] == "Valley Gazette Weekly"
    assert marker_runs(result.text) == list(MARKERS)
    for line in result.markdown.splitlines():  # no row joins two columns
        assert sum(marker in line for marker in MARKERS) <= 1, line


def test_a_figure_breaking_a_column_is_a_placeholder_in_that_column(read) -> None:
    page = Page()
    top = page.title("Bridges of the Valley", 120, 120)
    below = page.paragraph("alpha", 120, top, 660, 10)
    page.picture((120, below, 780, below + 500))
    page.line("Figure 1: the old bridge at dawn", 120, below + 520, 26)
    page.paragraph("bravo", 120, below + 600, 660, 10)
    page.paragraph("charlie", 870, top, 660, 30)
    result = read(page)
    assert marker_runs(result.text) == ["alpha", "bravo", "charlie"]
    text = result.text
    assert text.index("alpha") < text.index("Figure 1: the old bridge") < text.index("bravo")
    markdown = result.markdown
    assert "*[Figure" in markdown
    assert markdown.index("alpha") < markdown.index("*[Figure") < markdown.index("bravo")


def test_a_ruled_table_is_read_row_by_row_with_wrapped_cells_kept_in_their_row(read) -> None:
    rows = [
        ["Item", "Notes on the harvest", "Price"],
        ["apples", "picked early in the\nnorth farm orchards", "12.50"],
        ["honey", "from the hill village\nhives near the forest", "8.00"],
        ["cheese", "aged in the river town\ncellars for a year", "15.25"],
    ]
    page = Page()
    top = page.title("Market Prices", 120, 120)
    below = page.paragraph("alpha", 120, top, 1400, 3)
    below = page.table(120, below, [300, 700, 300], rows, ruled=True, height=100)
    page.paragraph("bravo", 120, below, 1400, 3)
    result = read(page)
    assert marker_runs(result.text) == ["alpha", "bravo"]
    table = [line for line in result.markdown.splitlines() if line.startswith("|")]
    assert table[0].split("|")[1:4] == [" Item ", " Notes on the harvest ", " Price "]
    assert table[2] == "| apples | picked early in the north farm orchards | 12.50 |"
    assert table[3] == "| honey | from the hill village hives near the forest | 8.00 |"
    assert table[4] == "| cheese | aged in the river town cellars for a year | 15.25 |"
    text = result.text
    assert text.index("alpha") < text.index("apples") < text.index("honey") < text.index("bravo")


def test_a_borderless_table_is_read_row_by_row(read) -> None:
    page = Page()
    top = page.title("Market Prices", 120, 120)
    below = page.paragraph("alpha", 120, top, 1400, 4)
    below = page.table(120, below, [400, 500, 300], PRICES, ruled=False)
    page.paragraph("bravo", 120, below, 1400, 4)
    result = read(page)
    assert marker_runs(result.text) == ["alpha", "bravo"]
    lines = lines_of(result.text)
    for row in PRICES:
        assert " ".join(row) in lines
    assert "| apples | north farm | 12.50 |" in result.markdown


def test_a_table_beside_a_text_column_stays_apart_from_it(read) -> None:
    page = Page()
    top = page.title("Market Prices", 120, 120)
    page.table(120, top, [300, 300, 200], PRICES, ruled=True)
    page.paragraph("alpha", 1000, top, 540, 20)
    result = read(page)
    lines = lines_of(result.text)
    for row in PRICES:  # no row of the table took a line of the text column
        assert " ".join(row) in lines
    alpha = [index for index, line in enumerate(lines) if line.startswith("alpha")]
    assert len(alpha) == 20
    assert alpha == list(range(alpha[0], alpha[0] + 20))  # the column is read in one run
    assert "| wool | east meadow | 30.00 |" in result.markdown


def test_header_and_footer_are_kept_apart_from_the_text(read) -> None:
    page = Page()
    page.line("Valley Quarterly Review Issue 7", 120, 60, 24)
    below = page.title("Harvest Report Summary", 120, 200)
    below = page.paragraph("alpha", 120, below, 1400, 12)
    page.paragraph("bravo", 120, below, 1400, 12)
    page.line("Page 12", 780, 2240, 24)
    result = read(page)
    markdown = result.markdown.splitlines()
    assert markdown[0] == "<!-- header: Valley Quarterly Review Issue 7 -->"
    assert markdown[-1] == "<!-- footer: Page 12 -->"
    assert "## Harvest Report Summary" in markdown
    assert marker_runs(result.text) == ["alpha", "bravo"]


@pytest.mark.parametrize("degrees", [90, 180])
def test_a_turned_page_is_read_upright_in_order(read, degrees: int) -> None:
    page = two_columns()
    page.image = page.image.rotate(degrees, expand=True, fillcolor="white")
    result = read(page)
    (found,) = result.pages
    assert found.rotation == degrees  # turned clockwise by as much as the scan was turned the other way
    assert found.width < found.height  # upright portrait
    assert marker_runs(result.text) == ["alpha", "bravo", "charlie", "delta"]


def test_layout_off_reads_by_lines_and_is_recorded(read, tmp_path: Path) -> None:
    result = read(two_columns(), layout=False)
    assert result.pages[0].layout == "off"
    assert marker_runs(result.text) == ["alpha", "bravo", "charlie", "delta"]
    source = two_columns().save(tmp_path / "columns.png")
    for flag, recorded in ((["--layout", "off"], "off"), ([], "regions")):
        out = tmp_path / f"out-{recorded}"
        assert run(["ocr", str(source), "--engine", "rapid", "--out-dir", str(out), *flag]) == 0
        (sidecar,) = out.glob("*.md")
        front_matter = yaml.safe_load(sidecar.read_text(encoding="utf-8").split("---")[1])
        assert front_matter["layout"] == recorded


def test_the_layout_model_finds_the_regions_of_a_page() -> None:
    page = two_columns()
    regions = LayoutModel().detect(np.asarray(page.image)[:, :, ::-1].copy())
    kinds = sorted(region.kind for region in regions)
    assert kinds == ["text", "text", "text", "text", "title"]
    title = next(region for region in regions if region.kind == "title")
    assert title.bbox[1] < 200 and title.score > 0.5


def test_a_picture_set_across_the_gutter_does_not_merge_the_columns() -> None:
    """Magazine layout: a narrow picture straddles the gutter with column text above and below it; the
    columns are still read one after the other (while a full-width one would end them)."""

    def text_lines(marker: str, x: int, top: int, count: int) -> list[Line]:
        return [
            Line(f"{marker} words of the column", (x, top + 40 * i, x + 400, top + 40 * i + 30), 1.0)
            for i in range(count)
        ]

    lines = text_lines("alpha", 100, 100, 10) + text_lines("bravo", 600, 100, 10)
    lines += text_lines("charlie", 100, 900, 5) + text_lines("delta", 600, 900, 5)
    regions = [
        Region("text", (100, 100, 500, 500), 0.9),
        Region("text", (600, 100, 1000, 500), 0.9),
        Region("text", (100, 900, 500, 1100), 0.9),
        Region("text", (600, 900, 1000, 1100), 0.9),
    ]
    narrow = Region("figure", (400, 550, 700, 850), 0.9)
    ordered, _, text = compose_regions(lines, [*regions, narrow])
    assert marker_runs(text) == ["alpha", "charlie", "bravo", "delta"]
    assert sorted(map(id, ordered)) == sorted(map(id, lines))  # every line once
    wide = Region("figure", (100, 550, 1000, 850), 0.9)
    _, markdown, text = compose_regions(lines, [*regions, wide])
    assert marker_runs(text) == ["alpha", "bravo", "charlie", "delta"]
    assert markdown.index("bravo") < markdown.index("*[Figure]*") < markdown.index("charlie")


def test_a_header_the_model_boxed_in_part_takes_the_rest_of_its_row() -> None:
    """A fax header: the model boxes only the page number at the right; the transmission line beside it,
    in no region, joins the header instead of being read as body text, and nothing of the body does."""
    lines = [
        Line("09/22/97 MON 15:35 FAX 12124554900", (40, 70, 300, 86), 1.0),
        Line("001", (640, 72, 668, 84), 1.0),
        *[Line(f"alpha words of the body {i}", (40, 200 + 40 * i, 600, 230 + 40 * i), 1.0) for i in range(6)],
    ]
    regions = [Region("header", (639, 72, 668, 85), 0.9), Region("text", (40, 200, 600, 430), 0.9)]
    ordered, markdown, text = compose_regions(lines, regions)
    assert markdown.splitlines()[0] == "<!-- header: 09/22/97 MON 15:35 FAX 12124554900 001 -->"
    assert lines_of(text)[0] == "09/22/97 MON 15:35 FAX 12124554900 001"
    assert marker_runs(text) == ["alpha"]
    assert sorted(map(id, ordered)) == sorted(map(id, lines))  # every line once


def test_a_table_under_a_banner_row_keeps_its_columns() -> None:
    """A form whose table region starts with a banner across all its columns: the banner takes the first
    cell, the columns come from the other rows; a table region of one column is read as lines, not a table."""
    banner = Line("Fax Fax Fax Fax Fax Fax", (100, 100, 620, 130), 1.0)
    cells = [
        Line("Date:", (100, 160, 170, 180), 1.0),
        Line("September 22, 1997", (210, 160, 320, 180), 1.0),
        Line("To:", (100, 200, 130, 220), 1.0),
        Line("Ron Milstein", (210, 200, 290, 220), 1.0),
        Line("From:", (390, 200, 430, 220), 1.0),
        Line("JJ Klein", (480, 200, 540, 220), 1.0),
    ]
    _, markdown, text = compose_regions([banner, *cells], [Region("table", (95, 95, 625, 225), 0.9)])
    assert markdown.splitlines() == [
        "| Fax Fax Fax Fax Fax Fax |  |  |  |",
        "|---|---|---|---|",
        "| Date: | September 22, 1997 |  |  |",
        "| To: | Ron Milstein | From: | JJ Klein |",
    ]
    assert lines_of(text)[1] == "Date: September 22, 1997"  # the text reads row by row as before
    single = [Line(f"entry {i}", (100, 100 + 40 * i, 300, 130 + 40 * i), 1.0) for i in range(3)]
    _, markdown, _ = compose_regions(single, [Region("table", (95, 95, 305, 215), 0.9)])
    assert markdown == "entry 0\nentry 1\nentry 2\n"


def test_text_beside_a_table_s_rules_is_not_part_of_the_table() -> None:
    """A report page: the model boxes a table ruled across its width together with the text column to
    its right. The lines beside the rules are read as their own column after the table, and the table's
    rows are not merged through the column's taller lines."""
    gray = np.full((900, 2000), 255, np.uint8)
    for y in range(100, 700, 120):
        gray[y : y + 3, 100:1200] = 0  # a rule under every second row, across the table only
    lines = []
    for i, row in enumerate(PRICES):
        top = 110 + 60 * i
        lines += [
            Line(cell, (x, top, x + 200, top + 30), 1.0) for cell, x in zip(row, (100, 500, 950), strict=True)
        ]
    column = [
        Line(f"alpha words of the profile {i}", (1300, 110 + 75 * i, 1900, 150 + 75 * i), 1.0)
        for i in range(6)
    ]
    ordered, markdown, text = compose_regions(
        [*lines, *column], [Region("table", (95, 95, 1905, 700), 0.9)], gray
    )
    assert lines_of(text)[: len(PRICES)] == [" ".join(row) for row in PRICES]
    assert marker_runs(text) == ["alpha"] and lines_of(text)[len(PRICES)].startswith("alpha")
    assert "| apples | north farm | 12.50 |" in markdown
    assert not any("alpha" in line for line in markdown.splitlines() if line.startswith("|"))
    assert sorted(map(id, ordered)) == sorted(map(id, lines + column))  # every line once


def test_a_form_s_labels_beside_its_underlines_stay_in_its_rows() -> None:
    """A form the model calls a table: its fields are underlined, its labels left of the underlines are
    set on the same rows, so they stay in the table, each beside its value."""
    fields = [
        ("Name:", "Ada Lovelace"),
        ("Street:", "12 Mill Lane"),
        ("Town:", "Marlow"),
        ("Phone:", "555 0199"),
    ]
    gray = np.full((500, 1000), 255, np.uint8)
    lines = []
    for i, (label, value) in enumerate(fields):
        top = 100 + 60 * i
        gray[top + 34 : top + 36, 300:900] = 0  # the field's underline
        lines += [
            Line(label, (100, top, 200, top + 30), 1.0),
            Line(value, (320, top + 2, 600, top + 30), 1.0),
        ]
    _, markdown, text = compose_regions(lines, [Region("table", (95, 95, 905, 345), 0.9)], gray)
    assert lines_of(text) == [f"{label} {value}" for label, value in fields]
    assert "| Street: | 12 Mill Lane |" in markdown


def test_labels_the_model_left_out_of_a_table_join_its_rows() -> None:
    """The model's table box holds a form's values only; their labels, in no region, share the values' rows
    and join the table instead of being read before it."""
    fields = [("Name:", "Ada Lovelace"), ("Street:", "12 Mill Lane"), ("Town:", "Marlow")]
    lines = []
    for i, (label, value) in enumerate(fields):
        top = 100 + 60 * i
        lines += [Line(label, (100, top, 200, top + 30), 1.0), Line(value, (320, top, 600, top + 30), 1.0)]
    lines += [
        Line(f"{value} 2", (650, 100 + 60 * i, 800, 130 + 60 * i), 1.0) for i, (_, value) in enumerate(fields)
    ]
    _, markdown, text = compose_regions(lines, [Region("table", (310, 95, 805, 295), 0.9)])
    assert lines_of(text) == [f"{label} {value} {value} 2" for label, value in fields]
    assert "| Street: | 12 Mill Lane | 12 Mill Lane 2 |" in markdown


def test_rules_around_groups_of_rows_do_not_merge_the_rows() -> None:
    """A ruled table whose rules set off its head and groups of two rows: each visual row is a row."""
    gray = np.full((600, 1300), 255, np.uint8)
    for y in (150, 290):
        gray[y : y + 3, 100:1200] = 0
    for x in (500, 900):
        gray[100:430, x : x + 3] = 0
    lines = []
    for row, top in zip(PRICES, (110, 170, 230, 310, 370), strict=True):
        lines += [
            Line(cell, (x, top, x + 200, top + 30), 1.0) for cell, x in zip(row, (120, 520, 920), strict=True)
        ]
    _, markdown, text = compose_regions(lines, [Region("table", (95, 95, 1205, 435), 0.9)], gray)
    assert markdown.splitlines()[2:] == [f"| {' | '.join(row)} |" for row in PRICES[1:]]
    assert lines_of(text) == [" ".join(row) for row in PRICES]


def test_pages_framed_four_to_a_sheet_are_read_page_by_page() -> None:
    """A transcript printed four pages to a sheet, each page boxed: the model calls the sheet a table; the
    frames hold pages of text, so the pages are read down the left column, then down the right."""
    gray = np.full((2200, 2000), 255, np.uint8)
    for y in (100, 1100, 2100):
        gray[y : y + 3, 100:1900] = 0
    for x in (100, 1000, 1900):
        gray[100:2103, x : x + 3] = 0
    lines = []
    for marker, left, top in (
        ("alpha", 150, 150),
        ("bravo", 150, 1150),
        ("charlie", 1050, 150),
        ("delta", 1050, 1150),
    ):
        lines += [
            Line(
                f"{marker} said that the words of line {i} run on",
                (left, top + 80 * i, left + 800, top + 80 * i + 40),
                1.0,
            )
            for i in range(10)
        ]
    _, markdown, text = compose_regions(lines, [Region("table", (95, 95, 1905, 2105), 0.9)], gray)
    assert marker_runs(text) == ["alpha", "bravo", "charlie", "delta"]
    assert "|" not in markdown


def test_table_columns_are_found_past_a_long_label_and_between_rules() -> None:
    """A financial statement: one label in ten runs into the first number column, and a rule divides only
    the actual figures from the estimates; every number still gets a column of its own."""
    years = ["Year", "2018", "2019", "2020", "2021"]
    body = [[f"item {i}", *(f"{i}{j}.5" for j in range(4))] for i in range(10)]
    body[3][0] = "item 3 with a label running long"
    gray = np.full((800, 1400), 255, np.uint8)
    gray[90:700, 848:851] = 0  # a rule between 2019 and 2020
    lines = []
    for i, row in enumerate([years, *body]):
        top = 100 + 50 * i
        for j, cell in enumerate(row):
            x = 100 if j == 0 else 350 + 250 * (j - 1) + (0 if j < 3 else 50)
            width = 420 if len(cell) > 20 else 150
            lines.append(Line(cell, (x, top, x + width, top + 30), 1.0))
    _, markdown, _ = compose_regions(lines, [Region("table", (95, 95, 1305, 635), 0.9)], gray)
    table = markdown.splitlines()
    assert table[0] == "| Year | 2018 | 2019 | 2020 | 2021 |"
    assert table[2] == "| item 0 | 00.5 | 01.5 | 02.5 | 03.5 |"
    assert table[5] == "| item 3 with a label running long | 30.5 | 31.5 | 32.5 | 33.5 |"


def magazine_columns(first: Line, gaps: list[tuple[int, float, float]]) -> list[WordGaps]:
    """Two columns of prose 20 px apart at 40 px line height (a tight magazine gutter) under ``first``."""
    below = []
    for i in range(1, 8):
        top = 100 + 45 * i
        below.append(Line(f"alpha words of the left column {i}", (100, top, 500, top + 40), 1.0))
        below.append(Line(f"bravo words of the right column {i}", (520, top, 920, top + 40), 1.0))
    return [WordGaps(first, gaps), *(WordGaps(line) for line in below)]


def test_a_line_run_across_a_narrow_gutter_is_split_and_the_columns_read_in_turn() -> None:
    """The detector joined the first lines of two columns; the blank between them, twice the line's word
    space and continued by the gutter below, splits it, and the columns are read one after the other."""
    first = Line("alpha first left words bravo first right words", (100, 100, 920, 140), 1.0)
    # blanks after "alpha", "first", "left", "words" (the gutter), "bravo", "first", "right"
    gaps = [(5, 170, 190), (10, 260, 280), (14, 340, 360), (19, 460, 560), (24, 630, 650), (29, 720, 740)]
    lines = split_at_gutters(magazine_columns(first, gaps))
    assert [line.text for line in lines[:2]] == ["alpha first left words", "bravo first right words"]
    assert lines[0].bbox == (100, 100, 460, 140) and lines[1].bbox == (560, 100, 920, 140)
    _, _, text = compose(lines, 1000, 600)
    assert marker_runs(text) == ["alpha", "bravo"]
    assert lines_of(text)[0] == "alpha first left words"


def test_a_wide_word_space_inside_a_paragraph_is_not_a_gutter() -> None:
    """A justified line's wide blank is crossed by the lines above and below it; a blank as wide as the
    line's other word spaces is not a gutter even where the lines around it leave a gap."""
    wide = Line("alpha loose justified words here", (100, 100, 920, 140), 1.0)
    gaps = [(5, 170, 190), (10, 260, 280), (19, 460, 560), (24, 630, 650)]
    paragraph = [WordGaps(wide, gaps)] + [
        WordGaps(Line(f"alpha words running on {i}", (100, 100 + 45 * i, 920, 140 + 45 * i), 1.0))
        for i in (1, 2)
    ]
    assert [line.text for line in split_at_gutters(paragraph)] == [item.line.text for item in paragraph]
    even = Line("alpha first left words bravo first right words", (100, 100, 920, 140), 1.0)
    same = [(5, 170, 190), (10, 260, 280), (14, 340, 360), (19, 520, 540), (24, 630, 650), (29, 720, 740)]
    assert split_at_gutters(magazine_columns(even, same))[0] == even


def test_captions_above_and_below_a_figure_are_read_where_they_stand() -> None:
    """A form block the model calls a figure, with a "caption" above it (the value of the field before it)
    and one below: the text keeps the page's order; the Markdown names both in the placeholder."""
    lines = [
        Line("alpha caption above the block", (100, 150, 700, 180), 1.0),
        Line("bravo first line of the block", (100, 250, 700, 280), 1.0),
        Line("bravo second line of the block", (100, 300, 700, 330), 1.0),
        Line("charlie caption below the block", (100, 620, 700, 650), 1.0),
        *[
            Line(f"delta text after the block {i}", (100, 700 + 40 * i, 700, 730 + 40 * i), 1.0)
            for i in range(6)
        ],
    ]
    regions = [
        Region("figure_caption", (100, 150, 700, 180), 0.9),
        Region("figure", (90, 200, 900, 600), 0.9),
        Region("figure_caption", (100, 620, 700, 650), 0.9),
    ]
    _, markdown, text = compose_regions(lines, regions)
    assert marker_runs(text) == ["alpha", "bravo", "charlie", "delta"]
    assert markdown.startswith("*[Figure: alpha caption above the block charlie caption below the block]*")


def test_a_form_s_labels_are_read_beside_their_values() -> None:
    """A case form: labels down the left, values beside them, one of them a long line and one an address
    of four lines; each label is read with its value, the address under its label's row."""
    rows = [
        (["CASE NAME:"], ["Donald D. Sellers and Robin J. Sellers v. Raybestos-Manhattan, et al."]),
        (["COURT:"], ["San Francisco Superior Court - No. 996382"]),
        (["DATE SERVED:"], ["August 3, 1998"]),
        (["CASE TYPE:"], ["Asbestos"]),
        (
            ["PLAINTIFF'S", "COUNSEL:"],
            [
                "Wartnick, Chaber, Harowitz",
                "101 California Street, Suite 2200",
                "San Francisco 94111",
                "415/986-5566",
            ],
        ),
        (["JUDGE:"], []),
        (["TRIAL DATE:"], []),
    ]
    lines, top = [], 100
    for labels, values in rows:
        for i, label in enumerate(labels):
            lines.append(Line(label, (100, top + 20 * i, 230, top + 20 * i + 18), 1.0))
        start = top + 20 * (len(labels) - 1)  # a value sits on its label's last line
        for i, value in enumerate(values):
            lines.append(Line(value, (300, start + 20 * i, 300 + 9 * len(value), start + 20 * i + 18), 1.0))
        top = start + 20 * max(len(values), 1) + 25
    _, _, text = compose(lines, 1000, 600)
    read = lines_of(text)
    assert read[:4] == [
        "CASE NAME: Donald D. Sellers and Robin J. Sellers v. Raybestos-Manhattan, et al.",
        "COURT: San Francisco Superior Court - No. 996382",
        "DATE SERVED: August 3, 1998",
        "CASE TYPE: Asbestos",
    ]
    assert read[4:9] == [
        "PLAINTIFF'S",
        "COUNSEL: Wartnick, Chaber, Harowitz",
        "101 California Street, Suite 2200",
        "San Francisco 94111",
        "415/986-5566",
    ]


def test_cards_side_by_side_are_read_card_by_card() -> None:
    """An organisation chart: cards of three lines in two columns, each beside its partner; the cards are
    read one after the other, not row by row across the pair."""
    lines = []
    for row, (left, right) in enumerate((("alpha", "bravo"), ("charlie", "delta"))):
        top = 100 + 200 * row
        for marker, x in ((left, 100), (right, 600)):
            lines += [
                Line(f"{marker} card line {i}", (x, top + 30 * i, x + 250, top + 30 * i + 25), 1.0)
                for i in range(3)
            ]
    _, _, text = compose(lines, 1000, 600)
    assert marker_runs(text) == ["alpha", "charlie", "bravo", "delta"]


def test_running_text_the_model_calls_a_title_is_a_paragraph() -> None:
    """A page of one paragraph (the bundled phototest sample): the model boxes it as a title, and its first
    two lines again as a second title. It is read as one paragraph, not as two headings."""
    lines = [
        Line(f"alpha words of the one paragraph {i}", (40, 100 + 45 * i, 600, 140 + 45 * i), 1.0)
        for i in range(6)
    ]
    regions = [Region("title", (35, 95, 605, 190), 0.5), Region("title", (35, 95, 605, 370), 0.8)]
    _, markdown, _ = compose_regions(lines, regions)
    assert "#" not in markdown
    assert markdown.splitlines()[:2] == [
        "alpha words of the one paragraph 0",
        "alpha words of the one paragraph 1",
    ]


def test_lines_in_no_region_are_read_by_their_geometry() -> None:
    """A receipt where the model finds nothing reads exactly as the line geometry reads it."""
    lines = [
        Line("TOTAL", (100, 100, 200, 130), 1.0),
        Line("12.00", (600, 100, 700, 130), 1.0),
        Line("CASH", (100, 150, 200, 180), 1.0),
        Line("20.00", (600, 150, 700, 180), 1.0),
    ]
    assert compose_regions(lines, []) == compose(lines, 800, 300)


def test_a_small_capture_is_ordered_by_its_lines_alone(engine: RapidEngine) -> None:
    image = Image.new("RGB", (320, 96), "white")
    ImageDraw.Draw(image).text((10, 30), "quiet towns", font=font(30), fill="black")
    page = engine.recognize_page(image, RecognizeOptions())
    assert page.layout == "lines"  # no layout model on a strip of screen text, though the step is on
    assert page.text.strip() == "quiet towns"


def test_ocr_reads_again_when_the_layout_setting_changes(tmp_path: Path) -> None:
    source = two_columns().save(tmp_path / "columns.png")
    sidecar = tmp_path / "columns.png.md"

    def ocr(*flag: str) -> tuple[str, int]:
        assert run(["ocr", str(source), "--engine", "rapid", *flag]) == 0
        front_matter = yaml.safe_load(sidecar.read_text(encoding="utf-8").split("---")[1])
        return front_matter["layout"], sidecar.stat().st_mtime_ns

    on = ocr()
    assert on[0] == "regions"
    assert ocr() == on  # up to date: not written again
    off = ocr("--layout", "off")
    assert off[0] == "off"  # read again without the layout step, into the same sidecar
    assert ocr("--layout", "off") == off
    assert ocr("--layout", "on")[0] == "regions"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["columns.png", "columns.png.md"]
