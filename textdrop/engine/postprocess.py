"""Cleaning what OCR vision-language models answer: their markups → Markdown, plain text or JSON text.

Every model family answers in its own dialect (see :mod:`textdrop.engine.prompts`):

* granite-docling: DocTags (``<doctag><text><loc_…>…</text><otsl>…</otsl>…</doctag>``), turned into Markdown
  here following docling-core's DocTags definition (``docling_core/types/doc/tokens.py`` and
  ``DoclingDocument.load_from_doctags``). Tables without merged cells become Markdown tables; tables with
  merged cells become HTML tables with ``rowspan``/``colspan``, which Markdown cannot express.
* dots.ocr: a JSON list of layout cells ``{"bbox", "category", "text"}``, turned into Markdown the way
  dots.ocr's ``layoutjson2md`` does (cells in order; tables stay HTML, formulas become ``$$`` blocks).
* DeepSeek-OCR: Markdown with ``<|ref|>label<|/ref|><|det|>[[x0, y0, x1, y1]]<|/det|>`` grounding tags.
* olmOCR: YAML front matter, then Markdown.
* Qwen-VL and general VLMs: Markdown, often fenced as a whole, sometimes with grounding tags.

Page headers and footers that a model labels as such (DocTags, dots.ocr) are dropped, as docling's and
dots.ocr's own Markdown exports do; pictures are dropped and their captions kept (there is no picture file
next to a sidecar to link to). HTML tables stay HTML in Markdown.

:func:`markdown_to_text` flattens Markdown to plain text; :func:`parse_json` finds the JSON object in an
answer; :class:`RepetitionDetector` watches a streamed answer for the repetition loops small VLMs fall
into on hard pages.
"""

from __future__ import annotations

import ast
import html
import json
import re
from dataclasses import dataclass, field
from html.parser import HTMLParser

from textdrop.engine.prompts import MODES, normalize_family

# ----------------------------------------------------------------------------------------------------------
# clean()
# ----------------------------------------------------------------------------------------------------------


def clean(family: str, text: str, mode: str = "markdown") -> str:
    """Turn a model's raw answer into what textdrop shows and writes.

    Args:
        family: The model family (one of ``prompts.FAMILIES``; unknown ones are treated as ``generic``).
        text: The raw answer.
        mode: ``markdown``: Markdown (no trailing newline); ``text``: plain text (see
            :func:`markdown_to_text`); ``json``: the JSON text of the answer, without fences or prose
            around it (parse it with :func:`parse_json`).

    Raises:
        ValueError: Unknown ``mode``.
    """
    if mode not in MODES:
        raise ValueError(f"unknown mode {mode!r}; expected one of {', '.join(MODES)}")
    family = normalize_family(family)
    text = _strip_model_tokens(text)
    if mode == "json":
        return _json_text(text)
    markdown = _to_markdown(family, text)
    return markdown_to_text(markdown) if mode == "text" else markdown


def _to_markdown(family: str, text: str) -> str:
    text = _strip_outer_fence(text, _JSON_FENCES if family == "dots-ocr" else _MARKDOWN_FENCES)
    if family == "olmocr" or _OLMOCR_FRONT_MATTER.match(text.lstrip()):
        text = split_front_matter(text)[1]
    if family == "granite-docling" or "<doctag>" in text:
        if _looks_like_doctags(text):
            text = doctags_to_markdown(text)
    elif family == "dots-ocr":
        converted = dots_layout_to_markdown(text)
        if converted is not None:
            text = converted
    elif family == "paddleocr-vl" and _OTSL_ANY.search(text) and "<otsl>" not in text:
        text = _bare_otsl_to_markdown(text)
    text = _strip_grounding(text)
    text = _tidy(text)
    return "" if text.lower() == "null" else text  # olmOCR's convention for a page without text


# --- tokens around the answer ------------------------------------------------------------------------------

_TRAILING_SPECIAL = re.compile(
    r"(?:\s*(?:<\|(?:im_end|endoftext|end_of_text|eot_id|end|user|assistant)\|>|<end_of_utterance>"
    r"|<｜end▁of▁sentence｜>|<eos>))+\s*$"
)
_THINK = re.compile(r"<think>.*?</think>\s*", re.S)


def _strip_model_tokens(text: str) -> str:
    """Normalise line ends; drop end-of-turn tokens left in by servers and reasoning (``<think>``) blocks."""
    text = (text or "").replace("\r\n", "\n").replace("\r", "\n").lstrip("\ufeff")
    text = _TRAILING_SPECIAL.sub("", text)
    while text.rstrip().endswith("</s>") and text.count("</s>") > text.count("<s>"):  # Llama/Mistral EOS
        text = _TRAILING_SPECIAL.sub("", text.rstrip()[: -len("</s>")])
    text = text.replace("<|grounding|>", "")
    return strip_reasoning(text)


def strip_reasoning(text: str, *, streaming: bool = False) -> str:
    """``text`` without reasoning (Qwen3-style ``<think>`` blocks), closed or not.

    Closed blocks are removed; after a lone ``</think>`` (the chat template opened the block in the prompt)
    only what follows it is kept; an unterminated ``<think>`` (reasoning cut off, or still streaming) is
    cut with everything after it. ``streaming``: ``text`` may end inside the tag itself (``<thi``), which
    is cut too.
    """
    text = _THINK.sub("", text)
    if "</think>" in text:  # the chat template opened the block in the prompt: the answer follows its end
        text = text.split("</think>", 1)[1].lstrip()
    if "<think>" in text:  # reasoning cut off before the answer began
        text = text.split("<think>", 1)[0]
    if streaming:
        for size in range(min(len(text), len("<think>") - 1), 0, -1):
            if text.endswith("<think>"[:size]):
                return text[:-size]
    return text


# --- a fence around the whole answer -----------------------------------------------------------------------

_MARKDOWN_FENCES = frozenset({"", "markdown", "md", "html", "text", "txt", "plaintext"})
_JSON_FENCES = _MARKDOWN_FENCES | {"json", "jsonc", "json5"}
_FENCE_LINE = re.compile(r"^ {0,3}(`{3,}|~{3,})\s*([^`\s]*)[^`]*$")


def _strip_outer_fence(text: str, langs: frozenset[str] = _MARKDOWN_FENCES) -> str:
    """Remove a code fence that wraps the whole answer (```` ```markdown … ``` ````), and only then.

    Inner fenced blocks (an opening fence with an info string, closed by a bare fence) are skipped, so a
    wrapped document may contain code blocks; a document that merely starts and ends with code blocks is
    left alone. An opening fence that is never closed (an answer cut off at the token limit) is removed.
    """
    lines = text.strip().split("\n")
    first = _FENCE_LINE.match(lines[0])
    if not first or first.group(2).lower() not in langs:
        return text
    marker = first.group(1)[0]
    depth = 0
    for k in range(1, len(lines)):
        inner = _FENCE_LINE.match(lines[k])
        if not inner or inner.group(1)[0] != marker:
            continue
        if lines[k].strip() != inner.group(1):  # fence with an info string: opens an inner block
            depth += 1
        elif depth:
            depth -= 1
        elif k == len(lines) - 1:
            return "\n".join(lines[1:k])
        else:  # the wrapper closes before the end: it does not wrap the whole answer
            return text
    return "\n".join(lines[1:])


# --- olmOCR front matter -----------------------------------------------------------------------------------

_OLMOCR_FRONT_MATTER = re.compile(r"\A---\n(?:[^\n]*\n)*?(?:primary_language|is_rotation_valid):")
_FRONT_MATTER = re.compile(r"\A---[ \t]*\n(.*?)\n---[ \t]*(?:\n|\Z)", re.S)


def split_front_matter(text: str) -> tuple[dict[str, str], str]:
    """Split a leading YAML front matter block (olmOCR's page metadata) from the text after it.

    Returns:
        The ``key: value`` pairs as strings (olmOCR's ``rotation_correction``, ``is_rotation_valid`` tell a
        caller to rotate and retry) and the remaining text; ``({}, text)`` when there is none.
    """
    match = _FRONT_MATTER.match(text.lstrip("\n"))
    if not match:
        return {}, text
    meta = {}
    for line in match.group(1).split("\n"):
        key, sep, value = line.partition(":")
        if sep and key.strip():
            meta[key.strip()] = value.strip()
    return meta, text.lstrip("\n")[match.end() :]


# --- grounding tags ----------------------------------------------------------------------------------------

_DEEPSEEK_LABELS = frozenset(
    {
        "text", "title", "sub_title", "image", "image_caption", "figure", "figure_caption", "table",
        "table_caption", "table_footnote", "equation", "formula", "header", "footer", "page_header",
        "page_footer", "footnote", "list", "code", "reference",
    }
)  # fmt: skip
_DEEPSEEK_REF = re.compile(r"<\|ref\|>(.*?)<\|/ref\|>\s*(?:<\|det\|>.*?<\|/det\|>)?", re.S)
_DEEPSEEK_DET = re.compile(r"<\|det\|>.*?<\|/det\|>", re.S)
# With special tokens skipped by the server the tags vanish and "label[[x0, y0, x1, y1]]" lines remain.
_DEEPSEEK_BARE = re.compile(r"^[ \t]*[a-z_]{1,20}\[\[[\d.,\s]+\]\][ \t]*$", re.M)
_QWEN_OBJECT = re.compile(r"<\|object_ref_start\|>(.*?)<\|object_ref_end\|>", re.S)
_QWEN_BOX = re.compile(r"<\|(box|quad)_start\|>.*?<\|\1_end\|>", re.S)
_QWEN1_BOX = re.compile(r"<box>\s*\(\s*\d+\s*,\s*\d+\s*\)\s*,\s*\(\s*\d+\s*,\s*\d+\s*\)\s*</box>")
_QWEN1_REF = re.compile(r"<ref>(.*?)</ref>", re.S)
_COORD_COMMENT = re.compile(r"<!--\s*[A-Za-z]*\s*\(\s*[\d.]+(?:\s*,\s*[\d.]+){3}\s*\)\s*-->")
_DATA_BBOX = re.compile(r"\s+data-bbox=\"[^\"]*\"")
_CENTER = re.compile(r"</?center>")


def _deepseek_ref(match: re.Match[str]) -> str:
    label = match.group(1).strip()
    if label in _DEEPSEEK_LABELS:
        return ""
    follows = match.string[match.end() : match.end() + 7]
    return label + "\n" if follows == "<|ref|>" else label


def _strip_grounding(text: str) -> str:
    """Remove grounding/box tags and coordinates, keeping any text they refer to.

    DeepSeek's layout labels (``<|ref|>sub_title<|/ref|><|det|>[[…]]<|/det|>``) go entirely; a ref holding
    document text keeps the text. Qwen2/2.5/3-VL ``<|object_ref_start|>…<|box_start|>(…)<|box_end|>`` and
    Qwen-VL ``<ref>…</ref><box>(…),(…)</box>`` keep the referenced text. Coordinate-only HTML comments
    ("qwenvl markdown" image placeholders), ``data-bbox`` attributes and ``<center>`` wrappers go too.
    """
    if "<|" in text:
        text = _DEEPSEEK_REF.sub(_deepseek_ref, text)
        text = _DEEPSEEK_DET.sub("", text)
        text = _QWEN_OBJECT.sub(r"\1", text)
        text = _QWEN_BOX.sub("", text)
    if "[[" in text:
        text = _DEEPSEEK_BARE.sub("", text)
    if "<box>" in text:
        text, boxes = _QWEN1_BOX.subn("", text)
        if boxes:
            text = _QWEN1_REF.sub(r"\1", text)
    if "<" in text:
        text = _COORD_COMMENT.sub("", text)
        text = _DATA_BBOX.sub("", text)
        text = _CENTER.sub("", text)
    return text


# --- whitespace --------------------------------------------------------------------------------------------


def _tidy(text: str) -> str:
    """Strip trailing whitespace, collapse runs of blank lines (outside code blocks), trim the ends."""
    out: list[str] = []
    fence: str | None = None
    blank = 0
    for raw in text.split("\n"):
        line = raw.rstrip()
        match = _FENCE_LINE.match(line)
        if fence is None and match:
            fence = match.group(1)
        elif fence is not None and line.strip() == fence:
            fence = None
        if not line and fence is None:
            blank += 1
            continue
        if blank and out:
            out.append("")
        blank = 0
        out.append(line)
    return "\n".join(out).strip("\n")


# ----------------------------------------------------------------------------------------------------------
# DocTags (granite-docling, SmolDocling)
# ----------------------------------------------------------------------------------------------------------

_OTSL_CELLS = ("fcel", "ecel", "lcel", "ucel", "xcel", "ched", "rhed", "srow", "nl")
_OTSL_ANY = re.compile(r"<(?:fcel|ecel|lcel|ucel|xcel|ched|rhed|srow|nl)>")
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


def _looks_like_doctags(text: str) -> bool:
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
            blocks.append("# " + _one_line(_dt_text(child)))
        elif name.startswith("section_header_level_"):
            level = min(int(name.rsplit("_", 1)[1]) + 1, 6)
            blocks.append("#" * level + " " + _one_line(_dt_text(child)))
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


def _one_line(text: str) -> str:
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
        text = _one_line(_dt_inline(inline[0]) if inline else _dt_text(own))
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
            cells[int(m.group(2))] = (m.group(1), _one_line(_dt_text(child)), links)
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


def _bare_otsl_to_markdown(text: str) -> str:
    """PaddleOCR-VL's table task answers in OTSL tokens without an ``<otsl>`` wrapper."""
    first = _OTSL_SPLIT.search(text)
    assert first is not None
    before = text[: first.start()].strip()
    parts = _OTSL_SPLIT.split(text[first.start() :])
    items = [("tok" if i % 2 else "text", part) for i, part in enumerate(parts) if part]
    rows = _otsl_rows(items)
    table = _render_table(rows) if rows else ""
    return "\n\n".join(p for p in (before, table) if p)


# ----------------------------------------------------------------------------------------------------------
# dots.ocr layout JSON
# ----------------------------------------------------------------------------------------------------------


def dots_layout_to_markdown(text: str) -> str | None:
    """Convert dots.ocr's layout answer (a JSON list of ``{bbox, category, text}`` cells) into Markdown.

    Cells are kept in the model's reading order. Page-header, Page-footer and Picture cells are dropped;
    a Title without ``#`` becomes ``# …``, a Section-header ``## …``; Formula text becomes a ``$$`` block
    (as dots.ocr's ``get_formula_in_markdown``); Table HTML stays HTML. An answer cut off mid-list keeps
    its complete cells.

    Returns:
        The Markdown, or ``None`` when ``text`` is not a layout answer (e.g. dots.ocr's plain OCR prompt).
    """
    cells = _dots_cells(text.strip())
    if cells is None:
        return None
    blocks: list[str] = []
    for cell in cells:
        category = str(cell.get("category", "Text"))
        body = cell.get("text")
        if category in ("Page-header", "Page-footer", "Picture") or not isinstance(body, str):
            continue
        body = body.strip()
        if body.startswith("`$") and body.endswith("$`"):
            body = body[1:-1]
        if not body:
            continue
        if category == "Formula":
            body = _formula_block(body)
        elif category == "Title" and not body.startswith("#"):
            body = "# " + _one_line(body)
        elif category == "Section-header" and not body.startswith("#"):
            body = "## " + _one_line(body)
        blocks.append(body)
    return "\n\n".join(blocks)


def _formula_block(text: str) -> str:
    if text.startswith("$$") and text.endswith("$$") and len(text) > 4 and "$" not in text[2:-2]:
        return "$$\n" + text[2:-2].strip() + "\n$$"
    if text.startswith("\\[") and text.endswith("\\]"):
        return "$$\n" + text[2:-2].strip() + "\n$$"
    if text.startswith("$") or re.search(r"\$[^$]+\$|\\\[.*\\\]", text, re.S):
        return text
    return "$$\n" + text + "\n$$"


def _dots_cells(text: str) -> list[dict] | None:
    if not text.startswith(("[", "{")):
        return None
    text = _latex_controls(text)
    data: object = None
    for candidate in (text, _repair_json(text)):
        try:
            data = json.loads(candidate, strict=False)
            break
        except ValueError:
            continue
    if data is None:  # cut off or otherwise broken: keep the cells that parse, in order
        data = _json_prefix_items(_repair_json(text))
    if isinstance(data, dict):
        data = data.get("layout") or data.get("cells") or [data]
    if not isinstance(data, list):
        return None
    cells = [c for c in data if isinstance(c, dict) and "category" in c]
    return cells if cells else None


def _json_prefix_items(text: str) -> list[object]:
    """The complete leading elements of a JSON array whose end is missing or broken."""
    decoder = json.JSONDecoder(strict=False)
    items: list[object] = []
    pos = text.find("[") + 1
    if pos == 0:
        return items
    while True:
        while pos < len(text) and text[pos] in " \t\r\n,":
            pos += 1
        try:
            value, pos = decoder.raw_decode(text, pos)
        except ValueError:
            return items
        items.append(value)


_JSON_ESCAPE = re.compile(r"\\(u[0-9a-fA-F]{4}|[\"\\/bfnrt])?")
_LATEX_CONTROL = re.compile(r"(?<!\\)((?:\\\\)*)\\([bf][a-zA-Z])")


def _latex_controls(text: str) -> str:
    """``\\frac``, ``\\beta``, ``\\bar`` in a JSON string decode to form feed/backspace + letters, which no
    document contains: read them as the LaTeX they are (escape the backslash)."""
    return _LATEX_CONTROL.sub(r"\1\\\\\2", text) if "\\" in text else text


def _repair_json(text: str) -> str:
    """Double the backslashes of LaTeX a model wrote into JSON strings without escaping them.

    Invalid escapes (``\\epsilon``, ``\\mathbb``) are doubled. When there were any, the answer evidently
    carries raw LaTeX, so a valid-looking escape followed by more lowercase letters (``\\theta``, ``\\frac``,
    ``\\nu``) is taken for LaTeX too; ``\\n`` before a capital, digit, space or non-ASCII letter stays a
    newline. Trailing commas before ``]``/``}`` are dropped.
    """
    invalid = False

    def fix(match: re.Match[str]) -> str:
        nonlocal invalid
        if match.group(1) is None:
            invalid = True
            return "\\\\"
        return match.group(0)

    repaired = _JSON_ESCAPE.sub(fix, text)
    if invalid:
        repaired = re.sub(r"(?<!\\)((?:\\\\)*)\\([bfnrt][a-z])", r"\1\\\\\2", repaired)
    return re.sub(r",(\s*[}\]])", r"\1", repaired)


# ----------------------------------------------------------------------------------------------------------
# JSON
# ----------------------------------------------------------------------------------------------------------


def parse_json(text: str) -> dict | list:
    """Parse the JSON object (or array) in a model's answer.

    Fences, reasoning blocks and prose around the JSON are ignored; common slips are repaired (trailing
    commas, LaTeX backslashes, Python-style single quotes/``True``/``None``). An array is accepted when it
    is the whole answer or holds objects/arrays, so a stray ``[1]`` in the prose is not taken for it.

    Raises:
        ValueError: No JSON value in the answer, or it is invalid or cut off; the message says which.
    """
    found = _locate_json(_latex_controls(_strip_outer_fence(_strip_model_tokens(text), _JSON_FENCES)))
    if isinstance(found, str):
        raise ValueError(found)
    return found[2]


def _json_text(text: str) -> str:
    body = _latex_controls(_strip_outer_fence(text, _JSON_FENCES).strip())
    found = _locate_json(body)
    return body if isinstance(found, str) else body[found[0] : found[1]]


_JSON_START = re.compile(r"[{\[]")


def _locate_json(text: str) -> tuple[int, int, dict | list] | str:
    """Find the first JSON object/array: ``(start, end, value)``, or a short reason why there is none."""
    stripped = text.strip()
    offset = text.find(stripped) if stripped else 0
    whole = _decode_at(stripped, 0) if stripped[:1] in ("{", "[") else None
    if whole is not None and whole[0] == len(stripped):
        return offset, offset + whole[0], whole[1]
    first_error = ""
    pos = 0
    while match := _JSON_START.search(text, pos):
        start = match.start()
        decoded = _decode_at(text, start)
        if decoded is not None:
            end, value = decoded
            if isinstance(value, dict) or (value and any(isinstance(v, (dict, list)) for v in value)):
                return start, end, value
            pos = end  # e.g. "[1]" in the prose: skip it
            continue
        end = _balanced_end(text, start)
        if match.group() == "{" or start == offset:
            if end is None:  # everything after it is inside it: do not take a fragment for the answer
                return first_error or "the JSON object is incomplete (the answer may have been cut off)"
            first_error = first_error or "the JSON object is invalid"
        pos = start + 1 if end is None else end
    return first_error or "no JSON object in the answer"


def _decode_at(text: str, start: int) -> tuple[int, dict | list] | None:
    """Decode the JSON value starting at ``start`` (strict, then repaired, then as a Python literal)."""
    decoder = json.JSONDecoder(strict=False)
    try:
        value, end = decoder.raw_decode(text, start)
        return (end, value) if isinstance(value, (dict, list)) else None
    except ValueError:
        pass
    end = _balanced_end(text, start)
    if end is None:
        return None
    span = text[start:end]
    try:
        value = json.loads(_repair_json(span), strict=False)
    except ValueError:
        try:
            value = ast.literal_eval(span)
        except (ValueError, SyntaxError, MemoryError, RecursionError):
            return None
        if not _json_like(value):
            return None
    return (end, value) if isinstance(value, (dict, list)) else None


def _json_like(value: object) -> bool:
    if isinstance(value, dict):
        return all(isinstance(k, str) and _json_like(v) for k, v in value.items())
    if isinstance(value, list):
        return all(_json_like(v) for v in value)
    return value is None or isinstance(value, (str, int, float, bool))


def _balanced_end(text: str, start: int) -> int | None:
    """Index after the bracket closing the one at ``start`` (strings in either quote skipped), or None."""
    depth = 0
    quote = ""
    i = start
    while i < len(text):
        ch = text[i]
        if quote:
            if ch == "\\":
                i += 1
            elif ch == quote:
                quote = ""
        elif ch in "\"'":
            quote = ch
        elif ch in "{[":
            depth += 1
        elif ch in "}]":
            depth -= 1
            if depth == 0:
                return i + 1
        i += 1
    return None


# ----------------------------------------------------------------------------------------------------------
# Markdown → plain text
# ----------------------------------------------------------------------------------------------------------

_PH = "\ue000{}\ue001"
_PH_RE = re.compile("\ue000(\\d+)\ue001")
_MATH = re.compile(
    r"\$\$.+?\$\$|\\\[.+?\\\]|\\\(.+?\\\)|(?<![\\$\w])\$(?=\S)[^$\n]+?(?<=\S)(?<!\\)\$(?![\d$])", re.S
)
_CODE_SPAN = re.compile(r"(`+)(.+?)\1", re.S)
_HTML_TABLE = re.compile(r"<table\b.*?</table>", re.S | re.I)
_HTML_COMMENT = re.compile(r"<!--.*?-->", re.S)
_IMG = re.compile(r"<img\b[^>]*?/?>(?:[^<]*</img>)?", re.I)
_MD_IMAGE = re.compile(r"!\[[^\]]*\]\((?:[^()\s]|\([^)]*\))*(?:\s+\"[^\"]*\")?\)")
_MD_LINK = re.compile(r"\[([^\]]+)\]\((?:[^()\s]|\([^)]*\))*(?:\s+\"[^\"]*\")?\)")
_MD_REF_LINK = re.compile(r"\[([^\]]+)\]\[[^\]]*\]")
_AUTOLINK = re.compile(r"<((?:https?|ftp|mailto):[^>\s]+)>")
_LINK_DEF = re.compile(r"^\s{0,3}\[[^\]]+\]:\s+\S+.*$")
_HEADING = re.compile(r"^\s{0,3}#{1,6}(?:\s+|$)(.*?)(?:\s+#+)?\s*$")
_RULE = re.compile(r"^\s{0,3}(?:([-*_=])\s*){3,}$")
_QUOTE = re.compile(r"^(\s*)(?:>\s?)+")
_TASK = re.compile(r"^(\s*)[-*+]\s+\[([ xX])\]\s+")
_UNORDERED = re.compile(r"^(\s*)[-*+]\s+")
_TABLE_SEPARATOR = re.compile(r"^\s*\|?\s*:?-{2,}:?\s*(?:\|\s*:?-{2,}:?\s*)*\|?\s*$")
_EMPHASIS = (
    re.compile(r"\*\*(?=\S)(.+?)(?<=\S)\*\*"),
    re.compile(r"(?<!\w)__(?=\S)(.+?)(?<=\S)__(?!\w)"),
    re.compile(r"(?<![*\w])\*(?=[^\s*])(.+?)(?<=[^\s*])\*(?![*\w])"),
    re.compile(r"(?<![_\w])_(?=[^\s_])(.+?)(?<=[^\s_])_(?![_\w])"),
    re.compile(r"~~(?=\S)(.+?)(?<=\S)~~"),
)
_ESCAPED = re.compile(r"\\([*_#`~|>+\-.!\[\]<])")
_BLOCK_TAG = re.compile(
    r"</?(?:p|div|h[1-6]|ul|ol|table|thead|tbody|tr|blockquote|center|section|figure)\b[^>]*>", re.I
)
_LI_TAG = re.compile(r"<li\b[^>]*>", re.I)
_BR_TAG = re.compile(r"<br\s*/?>", re.I)
_ANY_TAG = re.compile(r"</?[A-Za-z][\w:-]*(?:\s[^<>]*)?/?>")


def markdown_to_text(markdown: str) -> str:
    """Flatten Markdown (and the HTML models put in it) into plain text in reading order.

    * Headings, emphasis, block quotes, rules and link syntax go; a link becomes its text; images go
      (Markdown images, ``<img>`` and Nanonets' ``<img>description</img>``).
    * Bullets become ``• `` (indentation kept); numbered items keep their numbers; task-list and checkbox
      items become ``☐``/``☑``.
    * Tables (Markdown and HTML) become one line per row with the cells separated by tabs; merged HTML
      cells fill their first position and leave the others empty, so columns stay aligned.
    * Other HTML tags are removed and their text kept (``<br>`` is a line break); entities are decoded.
    * LaTeX (``$…$``, ``$$…$$``, ``\\(…\\)``, ``\\[…\\]``) and code are kept as written; code fences go.
    """
    out: list[str] = []
    fence: str | None = None
    prose: list[str] = []
    for line in markdown.replace("\r\n", "\n").split("\n"):
        match = _FENCE_LINE.match(line)
        if fence is None and match:
            out.append(_prose_to_text("\n".join(prose)))
            prose = []
            fence = match.group(1)
        elif fence is not None:
            if line.strip() == fence or (line.strip().startswith(fence) and not line.strip().strip(fence[0])):
                fence = None
            else:
                out.append(line)
        else:
            prose.append(line)
    out.append(_prose_to_text("\n".join(prose)))
    return _tidy("\n".join(out))


def _prose_to_text(text: str) -> str:
    if not text.strip():
        return ""
    saved: list[str] = []

    def keep(value: str) -> str:
        saved.append(value)
        return _PH.format(len(saved) - 1)

    text = _HTML_COMMENT.sub("", text)
    text = _HTML_TABLE.sub(lambda m: "\n" + keep(_html_table_text(m.group(0))) + "\n", text)
    text = _MATH.sub(lambda m: keep(m.group(0)), text)
    text = _CODE_SPAN.sub(lambda m: keep(m.group(2).strip()), text)
    text = _IMG.sub("", text)
    text = _MD_IMAGE.sub("", text)

    lines = text.split("\n")
    out: list[str] = []
    i = 0
    while i < len(lines):
        line = lines[i]
        if (
            "|" in line
            and i + 1 < len(lines)
            and _TABLE_SEPARATOR.match(lines[i + 1])
            and "-" in lines[i + 1]
        ):
            out.append(_md_row(line))
            i += 2
            while i < len(lines) and "|" in lines[i] and lines[i].strip():
                out.append(_md_row(lines[i]))
                i += 1
            continue
        out.append(_md_line(line))
        i += 1
    text = "\n".join(out)
    text = _inline(text)
    for _ in range(3):  # placeholders inside restored tables
        text = _PH_RE.sub(lambda m: saved[int(m.group(1))], text)
    return text


def _md_line(line: str) -> str:
    if _LINK_DEF.match(line) or _RULE.match(line):
        return ""
    line = _QUOTE.sub(r"\1", line)
    if heading := _HEADING.match(line):
        return heading.group(1)
    line = _TASK.sub(lambda m: m.group(1) + ("☐ " if m.group(2) == " " else "☑ "), line)
    return _UNORDERED.sub(r"\1• ", line)


def _md_row(line: str) -> str:
    body = line.strip()
    body = body[1:] if body.startswith("|") else body
    body = body[:-1] if body.endswith("|") and not body.endswith("\\|") else body
    cells = re.split(r"(?<!\\)\|", body)
    return "\t".join(_inline(cell.strip()) for cell in cells)


def _inline(text: str) -> str:
    text = _MD_LINK.sub(r"\1", text)
    text = _MD_REF_LINK.sub(r"\1", text)
    text = _AUTOLINK.sub(r"\1", text)
    for pattern in _EMPHASIS:
        text = pattern.sub(r"\1", text)
    text = _BR_TAG.sub("\n", text)
    text = _LI_TAG.sub("\n• ", text)
    text = _BLOCK_TAG.sub("\n", text)
    text = _ANY_TAG.sub("", text)
    text = _ESCAPED.sub(r"\1", text)
    return html.unescape(text)


class _TableText(HTMLParser):
    """Collects an HTML table's rows of (text, rowspan, colspan) cells and its caption."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.rows: list[list[tuple[str, int, int]]] = []
        self.caption: list[str] = []
        self._cell: list[str] | None = None
        self._span = (1, 1)
        self._in_caption = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "tr":
            self._close_cell()
            self.rows.append([])
        elif tag in ("td", "th"):
            self._close_cell()
            if not self.rows:
                self.rows.append([])
            values = dict(attrs)
            self._span = (_int(values.get("rowspan")), _int(values.get("colspan")))
            self._cell = []
        elif tag == "caption":
            self._in_caption = True
        elif tag == "br" and self._cell is not None:
            self._cell.append(" ")

    def handle_endtag(self, tag: str) -> None:
        if tag in ("td", "th", "tr"):
            self._close_cell()
        elif tag == "caption":
            self._in_caption = False

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)
        elif self._in_caption:
            self.caption.append(data)

    def _close_cell(self) -> None:
        if self._cell is not None:
            text = " ".join("".join(self._cell).split())
            self.rows[-1].append((text, *self._span))
            self._cell = None


def _int(value: str | None) -> int:
    try:
        return max(1, min(int(value or 1), 1000))
    except ValueError:
        return 1


def _html_table_text(table: str) -> str:
    parser = _TableText()
    parser.feed(table)
    parser.close()
    parser._close_cell()
    grid: dict[tuple[int, int], str] = {}
    for r, row in enumerate(parser.rows):
        c = 0
        for text, rowspan, colspan in row:
            while (r, c) in grid:
                c += 1
            for rr in range(r, r + rowspan):
                for cc in range(c, c + colspan):
                    grid[(rr, cc)] = ""
            grid[(r, c)] = _inline(text).replace("\n", " ")
            c += colspan
    lines = [" ".join("".join(parser.caption).split())] if "".join(parser.caption).strip() else []
    height = len(parser.rows)
    width = max((c + 1 for (r, c) in grid if r < height), default=0)
    for r in range(height):
        lines.append("\t".join(grid.get((r, c), "") for c in range(width)).rstrip("\t"))
    return "\n".join(lines)


# ----------------------------------------------------------------------------------------------------------
# Repetition loops
# ----------------------------------------------------------------------------------------------------------

MAX_PERIOD = 400
"""Longest repeated unit, in characters, that the period rule looks for: a long sentence or table row.
Longer units (whole paragraphs) are caught by the line rule."""

MIN_REPEATS = 10
"""A unit must repeat this many times in a row. Real documents repeat a sentence, a row or a phrase a few
times (blank form rows, "Yes / No" columns), not ten times verbatim."""

MIN_LOOP_CHARS = 200
"""...and the repeats must cover this many characters, so that short units need more than
:data:`MIN_REPEATS` copies: "0.0.0…" over 200 characters is a loop, a version number ``0.0.0.0`` or a row of
ten identical short cells is data."""

MANY_REPEATS = 40
"""A unit repeated this many times is a loop even when the copies cover fewer than :data:`MIN_LOOP_CHARS`
characters: a two-letter word 50 times ("ok ok ok …", 150 characters) is a loop, while a row of 25 cells
``| 0.00 |`` (177 characters) in a wide table is not."""

FILL_LOOP_CHARS = 600
"""Units made only of fill characters (leader dots, dashes, underscores, ``|---|`` separators, spaces) are
legitimate in tables of contents, forms and wide Markdown tables, so they must cover this many characters
(three times :data:`MIN_LOOP_CHARS`) before they count as a loop."""

LINE_REPEATS = 15
"""The same non-blank line this many times in a row (blank lines between them allowed) is a loop, however
long or short the line: it catches repeated paragraphs longer than :data:`MAX_PERIOD` and fires on a table
row repeated 15 times even when the row is too short for :data:`MIN_LOOP_CHARS`."""

MAX_LINES = 160
"""Lines a page has room for at most (a 1288 px page at 8 px a line), the default limit of repeated
structure; :class:`~textdrop.engine.vlm.VlmEngine` passes the prepared page's own figure."""

FILL_CHARS = frozenset(".-_=*~·…|:+ \t–—")
_CHECKBOXES = "[]()xX✓✔☐☑☒□■○●◯"


def _is_structure(line: str) -> bool:
    """True for a line that is mostly not words: table rows of empty cells or numbers, checkboxes, form
    lines, leaders: letters make up less than half of its visible characters, or it has at most two words
    (``Name: ________``, ``- [ ] Yes``)."""
    visible = [c for c in line if not c.isspace() and c not in FILL_CHARS and c not in _CHECKBOXES]
    letters = sum(c.isalpha() for c in visible)
    words = sum(any(c.isalpha() for c in word) for word in line.split())
    return letters * 2 < len(visible) or words <= 2


_PROBE = 16  # length of the suffix searched for earlier in the tail to find candidate periods
_MAX_LINE = 4096  # longest line kept for the line rule (longer lines are compared by their first 4096 chars)


class RepetitionDetector:
    """Detects a repetition loop in a token stream (VLMs loop on hard pages): feed() the text as it streams.

    Two rules, both looking only at the tail of the text:

    * period rule: the tail is a unit of ``min_period``..``max_period`` characters repeated at least
      ``min_repeats`` times and over at least ``min_chars`` characters, or at least ``many_repeats``
      times; units made only of fill characters must cover ``fill_chars`` characters;
    * line rule: the same non-blank line ``line_repeats`` times in a row.

    Repeated *structure* is not a loop until it outgrows the page: a line that is mostly not words
    (:func:`_is_structure`: an empty table row ``| | | |``, a checkbox ``- [ ]``, a form line
    ``Name: ________``, a row of numbers ``| 0.00 | 0.00 |``) may repeat, alone or as a unit of several
    lines, up to ``max_lines`` times, the number of lines the page has room for. A page's real structure
    fits on the page; a degenerate repetition of generated tokens runs past it.

    Each :meth:`feed` searches the last 16 characters in the last ``max_period`` characters (in C); only the
    distances where they recur are candidate periods. A candidate's repeating stretch is measured by a
    galloping search over slice comparisons (in C), and a rejected period is not looked at again until
    enough characters have arrived for it to qualify; multiples of a rejected period whose stretch is the
    same are skipped. The line rule looks only at the new chunk. The tail kept is bounded
    (``max_period * min_repeats`` characters and a little more).

    Once looping, :attr:`looping` stays True and :attr:`keep_chars` tells how much of the streamed text to
    keep: everything before the loop plus one copy of the repeated unit.
    """

    def __init__(
        self,
        *,
        min_period: int = 1,
        max_period: int = MAX_PERIOD,
        min_repeats: int = MIN_REPEATS,
        min_chars: int = MIN_LOOP_CHARS,
        fill_chars: int = FILL_LOOP_CHARS,
        line_repeats: int = LINE_REPEATS,
        many_repeats: int = MANY_REPEATS,
        max_lines: int = MAX_LINES,
    ) -> None:
        limits = (
            min_period,
            max_period,
            min_repeats,
            min_chars,
            fill_chars,
            line_repeats,
            many_repeats,
            max_lines,
        )
        if min(limits) < 1:
            raise ValueError("RepetitionDetector thresholds must be positive")
        if min_period > max_period:
            raise ValueError("min_period must not exceed max_period")
        self._min_period = min_period
        self._max_period = max_period
        self._min_repeats = min_repeats
        self._min_chars = min_chars
        self._fill_chars = fill_chars
        self._line_repeats = line_repeats
        self._many_repeats = max(many_repeats, min_repeats)
        self._max_lines = max(max_lines, line_repeats)
        self._window = max(max_period * min_repeats, min_chars, fill_chars) + max_period + _PROBE
        self._tail = ""
        self._offset = 0  # position of _tail[0] in the whole stream
        self._line = ""  # the current, unfinished line
        self._last_line: str | None = None
        self._line_count = 0
        self._run_end = 0  # stream position after the first line of the current run of identical lines
        self._looping = False
        self._keep: int | None = None
        self._wait: dict[int, int] = {}  # period → stream position before which it cannot fire
        self.reason: str | None = None
        """What was detected, for logs (``None`` while not looping)."""

    @property
    def looping(self) -> bool:
        """True once a loop has been detected (and from then on)."""
        return self._looping

    @property
    def keep_chars(self) -> int | None:
        """Once looping: how many characters of the whole stream to keep (the loop cut to one copy)."""
        return self._keep

    def feed(self, chunk: str) -> bool:
        """Add the next piece of streamed text; return True once the text ends in a loop."""
        if self._looping or not chunk:
            return self._looping
        start = self._offset + len(self._tail)
        self._tail += chunk
        if len(self._tail) > 2 * self._window:
            cut = len(self._tail) - self._window
            self._tail = self._tail[cut:]
            self._offset += cut
        if self._check_lines(chunk, start) or self._check_period():
            self._looping = True
        return self._looping

    def _check_lines(self, chunk: str, start: int) -> bool:
        pieces = chunk.split("\n")
        position = start
        for index, piece in enumerate(pieces):
            if len(self._line) < _MAX_LINE:
                self._line += piece[: _MAX_LINE - len(self._line)]
            position += len(piece)
            if index == len(pieces) - 1:
                break
            position += 1  # the newline
            line = self._line.rstrip()
            if line.strip():
                if line == self._last_line:
                    self._line_count += 1
                else:
                    self._last_line, self._line_count = line, 1
                    self._run_end = position
                limit = self._max_lines if _is_structure(line) else self._line_repeats
                if self._line_count >= limit:
                    self._keep = self._run_end
                    self.reason = f"the same line {self._line_count} times: {line[:60]!r}"
                    return True
            self._line = ""
        return False

    def _check_period(self) -> bool:
        tail = self._tail
        n = len(tail)
        if n < min(self._min_chars, MANY_REPEATS) or n <= _PROBE:
            return False
        end = self._offset + n
        probe = tail[-_PROBE:]
        low = max(0, n - _PROBE - self._max_period)
        rejected: tuple[int, int] | None = None  # smallest rejected period and where its periodic run starts
        j = tail.rfind(probe, low, n - 1)
        while j != -1:
            period = n - _PROBE - j
            j = tail.rfind(probe, low, j + _PROBE - 1)
            if period * self._min_repeats > n:
                break  # longer periods need even more text
            if period < self._min_period or self._wait.get(period, 0) > end:
                continue
            if rejected and period % rejected[0] == 0:
                # Its run is the rejected one's unless it reaches further back: then it is no longer and
                # needs more, so it fails too (this keeps a run of dots or zeros to one candidate).
                start = rejected[1]
                if start == 0 or (start - 1 + period < n and tail[start - 1] != tail[start - 1 + period]):
                    continue
            unit = tail[-period:]
            need = min(max(self._min_chars, period * self._min_repeats), period * self._many_repeats)
            if set(unit) <= FILL_CHARS:
                need = max(need, self._fill_chars)
            elif "\n" in unit and all(_is_structure(piece) for piece in unit.split("\n")):
                need = max(need, period * -(-self._max_lines // unit.count("\n")))  # rows of a table, a form
            span = self._span(tail, period, need)
            if span >= need:
                self._keep = self._offset + self._cut(tail, period, self._run_start(tail, period))
                copies = (end - self._keep) // period + 1
                self.reason = f"{tail[-period:][:60]!r} repeated {copies}+ times"
                return True
            # The span grows by one character at most per character fed: skip this period until it could.
            self._wait[period] = end + max(0, need - span)
            if rejected is None:
                rejected = (period, n - span)
        return False

    @staticmethod
    def _span(tail: str, period: int, limit: int) -> int:
        """Length of the stretch at the end of ``tail`` that repeats with ``period`` (up to about ``limit``).

        Galloping search over slice comparisons (in C): the last ``_PROBE`` characters are known to repeat.
        """
        n = len(tail)
        most = min(n - period, max(limit - period, _PROBE))
        good, bad = _PROBE, None
        step = _PROBE
        while bad is None:
            step *= 2
            size = min(step, most)
            if tail[n - size :] == tail[n - size - period : n - period]:
                good = size
                if size == most:
                    return good + period
            else:
                bad = size
        while bad - good > 1:
            mid = (good + bad) // 2
            if tail[n - mid :] == tail[n - mid - period : n - period]:
                good = mid
            else:
                bad = mid
        return good + period

    @staticmethod
    def _run_start(tail: str, period: int) -> int:
        """Where the stretch of ``tail`` that repeats with ``period`` up to its end begins."""
        k = len(tail) - 1
        while k >= period and tail[k] == tail[k - period]:
            k -= 1
        return k - period + 1 if k >= period else 0

    @staticmethod
    def _cut(tail: str, period: int, start: int) -> int:
        """Where to cut a loop of ``period`` that runs from ``start`` to the end: after its first copy."""
        cut = start + period
        unit = tail[start:cut]
        limit = min(len(tail), cut + period - 1)
        if "\n" in unit:  # lines (table rows): finish the line the copy ends in
            end = tail.find("\n", cut - 1, limit)
            return cut if end < 0 else end + 1
        if any(c.isspace() for c in unit):  # words: finish the word the copy ends in
            while cut < limit and not tail[cut - 1].isspace() and not tail[cut].isspace():
                cut += 1
        return cut
