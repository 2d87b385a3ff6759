"""Cleaning what OCR vision-language models answer: their markups → Markdown, plain text or JSON text.

Every model family answers in its own dialect (DocTags, dots.ocr layout JSON, olmOCR front matter, …);
its module under :mod:`textdrop.engine.vlm.families` turns that into Markdown (:meth:`Family.convert`).
What is left here is the same for every family: end-of-turn tokens and reasoning blocks, a fence around
the whole answer, grounding tags and box coordinates (DeepSeek, Qwen), whitespace.

:func:`markdown_to_text` flattens Markdown to plain text; :func:`parse_json` finds the JSON object in an
answer; :class:`RepetitionDetector` watches a streamed answer for the repetition loops small VLMs fall
into on hard pages.
"""

from __future__ import annotations

import ast
import html
import json
import re
from html.parser import HTMLParser

from textdrop.engine.vlm import families
from textdrop.engine.vlm.families import Family

MODES = ("markdown", "text", "json")
"""What a page can be read as: Markdown, plain text in reading order, or one JSON object."""

# ----------------------------------------------------------------------------------------------------------
# clean()
# ----------------------------------------------------------------------------------------------------------


def clean(family: str | Family, text: str, mode: str = "markdown") -> str:
    """Turn a model's raw answer into what textdrop shows and writes.

    Args:
        family: The model family (a :class:`~textdrop.engine.vlm.families.Family` or its key; unknown keys
            are treated as ``generic``); its :meth:`~textdrop.engine.vlm.families.Family.convert` turns the
            family's markup into Markdown.
        text: The raw answer.
        mode: ``markdown``: Markdown (no trailing newline); ``text``: plain text (see
            :func:`markdown_to_text`); ``json``: the JSON text of the answer, without fences or prose
            around it (parse it with :func:`parse_json`).

    Raises:
        ValueError: Unknown ``mode``.
    """
    if mode not in MODES:
        raise ValueError(f"unknown mode {mode!r}; expected one of {', '.join(MODES)}")
    text = _strip_model_tokens(text)
    if mode == "json":
        return _json_text(text)
    text = families.get(family).convert(strip_outer_fence(text))
    text = _tidy(_strip_grounding(text))
    markdown = "" if text.lower() == "null" else text  # olmOCR's convention for a page without text
    return markdown_to_text(markdown) if mode == "text" else markdown


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

MARKDOWN_FENCES = frozenset({"", "markdown", "md", "html", "text", "txt", "plaintext"})
JSON_FENCES = MARKDOWN_FENCES | {"json", "jsonc", "json5"}
_FENCE_LINE = re.compile(r"^ {0,3}(`{3,}|~{3,})\s*([^`\s]*)[^`]*$")


def strip_outer_fence(text: str, langs: frozenset[str] = MARKDOWN_FENCES) -> str:
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


# --- YAML front matter ------------------------------------------------------------------------------------

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


_JSON_ESCAPE = re.compile(r"\\(u[0-9a-fA-F]{4}|[\"\\/bfnrt])?")
_LATEX_CONTROL = re.compile(r"(?<!\\)((?:\\\\)*)\\([bf][a-zA-Z])")


def latex_controls(text: str) -> str:
    """``\\frac``, ``\\beta``, ``\\bar`` in a JSON string decode to form feed/backspace + letters, which no
    document contains: read them as the LaTeX they are (escape the backslash)."""
    return _LATEX_CONTROL.sub(r"\1\\\\\2", text) if "\\" in text else text


def repair_json(text: str) -> str:
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
    found = _locate_json(latex_controls(strip_outer_fence(_strip_model_tokens(text), JSON_FENCES)))
    if isinstance(found, str):
        raise ValueError(found)
    return found[2]


def _json_text(text: str) -> str:
    body = latex_controls(strip_outer_fence(text, JSON_FENCES).strip())
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
        value = json.loads(repair_json(span), strict=False)
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
structure; :class:`~textdrop.engine.vlm.guards.VlmEngine` passes the prepared page's own figure."""

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
