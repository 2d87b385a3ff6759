"""DocTags and OTSL, the markup of granite-docling (and SmolDocling) and of PaddleOCR-VL's tables → Markdown.

Follows docling-core's DocTags definition (``docling_core/types/doc/tokens.py`` and
``DoclingDocument.load_from_doctags``). Tables without merged cells become Markdown tables; tables with
merged cells become HTML tables with ``rowspan``/``colspan``, which Markdown cannot express. Page headers
and footers are dropped and pictures are dropped with their captions kept, as docling's Markdown export
does. Not a family itself: :mod:`.granite_docling` and :mod:`.paddleocr_vl` use it.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass, field

_OTSL_CELLS = ("fcel", "ecel", "lcel", "ucel", "xcel", "ched", "rhed", "srow", "nl")
OTSL_ANY = re.compile(r"<(?:fcel|ecel|lcel|ucel|xcel|ched|rhed|srow|nl)>")
_DT_ELEMENTS = frozenset(
    {
        "doctag",
        "title",
        "text",
        "paragraph",
        "reference",
        "handwritten_text",
        "caption",
        "footnote",
        "formula",
        "code",
        "page_header",
        "page_footer",
        "picture",
        "chart",
        "otsl",
        "document_index",
        "ordered_list",
        "unordered_list",
        "list_item",
        "checkbox_selected",
        "checkbox_unselected",
        "key_value_region",
        "inline",
        "smiles",
        "form",
    }
    | {f"section_header_level_{n}" for n in range(7)}
)
_DT_TAG = re.compile(r"<(/?)([A-Za-z_][\w#+.-]*)/?>")
_KV_CELL = re.compile(r"(key|value)_(\d+)")


@dataclass
class _Tok:
    """A DocTags token that is not an element: ``<loc_12>``, ``<fcel>``, ``<_Python_>``, ``<link_3>``…"""

    name: str


@dataclass
class _Node:
    name: str
    children: list[_Node | _Tok | str] = field(default_factory=list)


def looks_like_doctags(text: str) -> bool:
    return "<doctag>" in text or bool(
        re.search(r"<(?:text|title|otsl|section_header_level_\d|loc_\d+)>", text)
    )


def _parse_doctags(text: str) -> _Node:
    """Parse DocTags into a tree; tolerant of unclosed elements (answers cut off at the token limit)."""
    start = text.find("<doctag>")
    if start >= 0:
        text = text[start + len("<doctag>") :]
    end = text.find("</doctag>")
    if end >= 0:
        text = text[:end]
    root = _Node("doctag")
    stack = [root]
    pos = 0
    for match in _DT_TAG.finditer(text):
        if match.start() > pos:
            stack[-1].children.append(text[pos : match.start()])
        pos = match.end()
        closing, name = match.group(1), match.group(2)
        is_element = name in _DT_ELEMENTS or _KV_CELL.fullmatch(name)
        if not closing:
            if is_element:
                node = _Node(name)
                stack[-1].children.append(node)
                stack.append(node)
            else:
                stack[-1].children.append(_Tok(name))
        elif is_element and any(n.name == name for n in stack[1:]):
            while stack[-1].name != name:
                stack.pop()
            stack.pop()
    if pos < len(text):
        stack[-1].children.append(text[pos:])
    return root


def doctags_to_markdown(doctags: str) -> str:
    """Convert DocTags (granite-docling's answer) into Markdown.

    Location tokens are dropped; page headers and footers are dropped; pictures are dropped and their
    captions kept; a title is ``#``, ``section_header_level_N`` is N+1 ``#``; formulas become ``$$`` blocks
    (``$…$`` inside an inline group); code keeps its language; lists nest by four spaces.
    """
    return "\n\n".join(b for b in _dt_blocks(_parse_doctags(doctags)) if b.strip())


def _dt_text(node: _Node | str | _Tok, *, sep: str = " ") -> str:
    """The plain text of a node: its strings and its sub-elements' text; tokens dropped."""
    if isinstance(node, str):
        return node
    if isinstance(node, _Tok):
        return ""
    parts = [_dt_text(child).strip() for child in node.children]
    return sep.join(p for p in parts if p)


def _dt_blocks(node: _Node) -> list[str]:
    blocks: list[str] = []
    for child in node.children:
        if isinstance(child, str):
            if child.strip():
                blocks.append(child.strip())
            continue
        if isinstance(child, _Tok):
            continue
        name = child.name
        if name in ("page_header", "page_footer"):
            continue
        if name == "title":
            blocks.append("# " + one_line(_dt_text(child)))
        elif name.startswith("section_header_level_"):
            level = min(int(name.rsplit("_", 1)[1]) + 1, 6)
            blocks.append("#" * level + " " + one_line(_dt_text(child)))
        elif name == "formula":
            blocks.append("$$\n" + _dt_text(child).strip() + "\n$$")
        elif name == "code":
            blocks.append(_dt_code(child))
        elif name in ("picture", "chart", "otsl", "document_index"):
            captions = [c for c in child.children if isinstance(c, _Node) and c.name == "caption"]
            blocks.extend(_escape_block_start(_dt_text(c)) for c in captions)
            if name != "picture":
                rows = _otsl_rows(_dt_items(child))
                if rows:
                    blocks.append(_render_table(rows))
        elif name in ("ordered_list", "unordered_list"):
            blocks.append("\n".join(_dt_list(child, 0)))
        elif name == "list_item":
            blocks.append("\n".join(_dt_list(_Node("unordered_list", [child]), 0)))
        elif name in ("checkbox_selected", "checkbox_unselected"):
            box = "☑" if name == "checkbox_selected" else "☐"
            blocks.append(f"{box} {_dt_text(child)}")
        elif name == "inline":
            blocks.append(_dt_inline(child))
        elif name == "key_value_region":
            blocks.append(_dt_key_values(child))
        elif name in ("doctag", "form"):
            blocks.extend(_dt_blocks(child))
        else:  # text, paragraph, caption, footnote, reference, handwritten_text, smiles…
            blocks.append(_escape_block_start(_dt_text(child).strip()))
    return blocks


_BLOCK_MARKER = re.compile(r"^([ \t]*)([*+>#-])(?=\s|$)", re.M)


def _escape_block_start(text: str) -> str:
    """DocTags text is plain text: keep a leading ``*``, ``-``, ``+``, ``#`` or ``>`` from turning into a
    Markdown bullet, heading or quote (a footnote "* These are…" stays a paragraph)."""
    return _BLOCK_MARKER.sub(r"\1\\\2", text)


def one_line(text: str) -> str:
    return " ".join(text.split())


def _dt_code(node: _Node) -> str:
    language = ""
    for child in node.children:
        if isinstance(child, _Tok) and child.name.startswith("_") and child.name.endswith("_"):
            language = child.name.strip("_").lower()
            break
    language = "" if language == "unknown" else language
    return f"```{language}\n{_dt_text(node, sep='').strip()}\n```"


def _dt_inline(node: _Node) -> str:
    parts = []
    for child in node.children:
        if isinstance(child, _Node) and child.name == "code":
            parts.append(f"`{_dt_text(child).strip()}`")
        elif isinstance(child, _Node) and child.name == "formula":
            parts.append(f"${_dt_text(child).strip()}$")
        else:
            parts.append(_dt_text(child).strip())
    return " ".join(p for p in parts if p)


_ENUMERATED = re.compile(r"^(?:\d{1,3}|[a-zA-Z]|[ivxlcIVXLC]{1,5})[.)]\s")
_BULLET = re.compile(r"^[•●○◦▪■□·∙*–-]\s+")


def _dt_list(node: _Node, depth: int) -> list[str]:
    lines: list[str] = []
    indent = "    " * depth
    number = 0
    for item in node.children:
        if not isinstance(item, _Node):
            continue
        if item.name in ("ordered_list", "unordered_list"):  # a nested list outside a list_item
            lines.extend(_dt_list(item, depth + 1))
            continue
        nested = [
            c for c in item.children if isinstance(c, _Node) and c.name in ("ordered_list", "unordered_list")
        ]
        own = _Node(item.name, [c for c in item.children if all(c is not n for n in nested)])
        inline = [c for c in own.children if isinstance(c, _Node) and c.name == "inline"]
        text = one_line(_dt_inline(inline[0]) if inline else _dt_text(own))
        if text:
            number += 1
            if _ENUMERATED.match(text):
                lines.append(indent + text)
            elif node.name == "ordered_list":
                lines.append(f"{indent}{number}. {text}")
            else:
                lines.append(f"{indent}- {_BULLET.sub('', text)}")
        for sub in nested:
            lines.extend(_dt_list(sub, depth + 1))
    return lines


def _dt_key_values(node: _Node) -> str:
    cells: dict[int, tuple[str, str, list[int]]] = {}
    for child in node.children:
        if isinstance(child, _Node) and (m := _KV_CELL.fullmatch(child.name)):
            links = [
                int(t.name[5:]) for t in child.children if isinstance(t, _Tok) and t.name.startswith("link_")
            ]
            cells[int(m.group(2))] = (m.group(1), one_line(_dt_text(child)), links)
    lines: list[str] = []
    shown: set[int] = set()
    for cell_id, (kind, text, links) in cells.items():
        if kind == "key":
            linked = [i for i in links if i in cells and cells[i][0] == "value"]
            shown.update(linked)
            values = "; ".join(cells[i][1] for i in linked)
            lines.append(f"{text.rstrip(':').rstrip()}: {values}" if values else text)
        elif cell_id not in shown:
            lines.append(text)
    return "\n\n".join(line for line in lines if line)


# --- OTSL tables -------------------------------------------------------------------------------------------


def _dt_items(node: _Node) -> list[tuple[str, str]]:
    """The OTSL stream of a table element: ("tok", cell token) and ("text", cell text); captions left out."""
    items: list[tuple[str, str]] = []
    for child in node.children:
        if isinstance(child, _Tok):
            if child.name in _OTSL_CELLS:
                items.append(("tok", child.name))
        elif isinstance(child, str):
            items.append(("text", child))
        elif child.name != "caption":
            items.append(("text", _dt_text(child)))
    return items


def _otsl_rows(items: list[tuple[str, str]]) -> list[list[list[str]]]:
    """Group an OTSL stream into rows of ``[token, text]`` cells (``nl`` ends a row)."""
    rows: list[list[list[str]]] = []
    row: list[list[str]] = []
    for kind, value in items:
        if kind == "tok":
            if value == "nl":
                rows.append(row)
                row = []
            else:
                row.append([value, ""])
        elif row:
            row[-1][1] += value
    if row:
        rows.append(row)
    return [r for r in rows if r]


@dataclass
class _Cell:
    text: str
    header: bool
    rowspan: int = 1
    colspan: int = 1


def _table_grid(rows: list[list[list[str]]]) -> tuple[list[list[_Cell | None]], bool]:
    """Resolve OTSL spans: each origin cell gets its row/column span; covered positions become ``None``.

    ``lcel`` extends the cell on its left, ``ucel`` the one above, ``xcel`` both (docling-core's
    ``otsl_parse_texts``). Returns the grid and whether any cell spans more than one position.
    """
    width = max(len(r) for r in rows)
    tokens = [[c[0] for c in r] + ["ecel"] * (width - len(r)) for r in rows]
    texts = [[" ".join(c[1].split()) for c in r] + [""] * (width - len(r)) for r in rows]
    grid: list[list[_Cell | None]] = [[None] * width for _ in rows]
    covered: set[tuple[int, int]] = set()
    spans = False
    for r, row in enumerate(tokens):
        for c, token in enumerate(row):
            if (r, c) in covered:
                continue
            cell = _Cell(texts[r][c], token in ("ched", "rhed"))
            if token in ("lcel", "ucel", "xcel"):  # a span with nothing to extend: an empty cell
                cell = _Cell("", False)
            else:
                while c + cell.colspan < width and row[c + cell.colspan] in ("lcel", "xcel"):
                    cell.colspan += 1
                while r + cell.rowspan < len(tokens) and tokens[r + cell.rowspan][c] in ("ucel", "xcel"):
                    cell.rowspan += 1
            for rr in range(r, r + cell.rowspan):
                for cc in range(c, c + cell.colspan):
                    covered.add((rr, cc))
            grid[r][c] = cell
            spans = spans or cell.rowspan > 1 or cell.colspan > 1
    return grid, spans


def _render_table(rows: list[list[list[str]]]) -> str:
    """A Markdown table (first row as header), or an HTML table when cells are merged."""
    grid, spans = _table_grid(rows)
    if spans:
        lines = ["<table>"]
        for row in grid:
            cells = []
            for cell in row:
                if cell is None:
                    continue
                tag = "th" if cell.header else "td"
                attrs = (f' rowspan="{cell.rowspan}"' if cell.rowspan > 1 else "") + (
                    f' colspan="{cell.colspan}"' if cell.colspan > 1 else ""
                )
                cells.append(f"<{tag}{attrs}>{html.escape(cell.text, quote=False)}</{tag}>")
            lines.append("<tr>" + "".join(cells) + "</tr>")
        lines.append("</table>")
        return "\n".join(lines)
    md_rows = [
        "| " + " | ".join((c.text if c else "").replace("|", "\\|") for c in row) + " |" for row in grid
    ]
    separator = "| " + " | ".join("---" for _ in grid[0]) + " |"
    return "\n".join([md_rows[0], separator, *md_rows[1:]])


_OTSL_SPLIT = re.compile(r"<(fcel|ecel|lcel|ucel|xcel|ched|rhed|srow|nl)>")


def bare_otsl_to_markdown(text: str) -> str:
    """PaddleOCR-VL's table task answers in OTSL tokens without an ``<otsl>`` wrapper."""
    first = _OTSL_SPLIT.search(text)
    assert first is not None
    before = text[: first.start()].strip()
    parts = _OTSL_SPLIT.split(text[first.start() :])
    items = [("tok" if i % 2 else "text", part) for i, part in enumerate(parts) if part]
    rows = _otsl_rows(items)
    table = _render_table(rows) if rows else ""
    return "\n\n".join(p for p in (before, table) if p)
