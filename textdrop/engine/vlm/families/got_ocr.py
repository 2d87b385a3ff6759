"""GOT-OCR2 (stepfun-ai, Apache-2.0): plain OCR or Mathpix Markdown ("format" mode); mlx-vlm only.

Prompts: GOT's own ``GOT/demo/run_ocr_2.0.py`` (github.com/Ucas-HaoranWei/GOT-OCR2.0) and the transformers
``GotOcr2Processor`` (``format=True``) send ``OCR: `` for plain text and ``OCR with format: `` for
formatted text, trailing space included; the runtime wraps them in GOT's MPT conversation with the 256
image tokens (mlx-vlm ``models/got/processing_got.py``), so the text part is the instruction alone. GOT reads
one 1024x1024 px image (the processor resizes any page to that), was not trained on free instructions,
and ends its turn with ``<|im_end|>``.

The formatted answer is Mathpix Markdown: Markdown paragraphs with LaTeX structure commands
(``\\title{…}``, ``\\section*{…}``, ``\\author{…}``, ``tabular`` tables, ``\\(…\\)`` and ``\\[…\\]`` math;
transformers' GOT-OCR2 documentation shows an answer starting ``\\author{\\nHanwen Jiang* \\(\\quad\\) …``,
its integration test one starting ``\\title{\\nR``). :meth:`GotOcr.convert` turns those commands into
Markdown; everything else is already Markdown.
"""

from __future__ import annotations

import re

from textdrop.engine.vlm.families import Family

_HEADINGS = {"title": "#", "section": "##", "subsection": "###", "subsubsection": "####"}
_COMMAND = re.compile(r"\\(title|section|subsection|subsubsection|author|footnotetext)\*?\{")
_TABULAR = re.compile(r"\\begin\{tabular\}\{[^{}]*\}(.*?)\\end\{tabular\}", re.S)
_LIST = re.compile(r"\\begin\{(itemize|enumerate)\}(.*?)\\end\{\1\}", re.S)
_ENV_MARKS = re.compile(r"\\(?:begin|end)\{(?:center|abstract|document)\}")
_MULTICOLUMN = re.compile(r"\\multicolumn\{(\d+)\}\{[^{}]*\}\{(.*)\}")
_RULES = re.compile(r"\\(?:hline|cline\{[^{}]*\}|toprule|midrule|bottomrule)")


class GotOcr(Family):
    def convert(self, answer: str) -> str:
        """Mathpix Markdown → Markdown: headings, tables, lists and math delimiters.

        ``\\title{…}`` → ``# …``, ``\\section*{…}`` → ``## …`` (subsections deeper), ``\\author{…}`` and
        ``\\footnotetext{…}`` → their text; ``tabular`` → a pipe table (``\\multicolumn`` cells spread,
        rules dropped); ``itemize``/``enumerate`` → ``-``/``1.`` items; ``\\(…\\)`` → ``$…$``,
        ``\\[…\\]`` → a ``$$`` block; ``center``/``abstract`` environment marks dropped.
        """
        text = _commands(answer)
        text = _TABULAR.sub(lambda m: "\n\n" + _table(m.group(1)) + "\n\n", text)
        text = _LIST.sub(lambda m: "\n\n" + _items(m.group(1), m.group(2)) + "\n\n", text)
        text = _ENV_MARKS.sub("", text)
        text = re.sub(
            r"\\\[(.+?)\\\]", lambda m: "\n\n$$\n" + m.group(1).strip() + "\n$$\n\n", text, flags=re.S
        )
        text = re.sub(r"\\\((.+?)\\\)", lambda m: "$" + m.group(1).strip() + "$", text, flags=re.S)
        return re.sub(r"\n{3,}", "\n\n", text).strip()


def _commands(text: str) -> str:
    """Replace each structure command by its Markdown form; the braces are matched, so ``\\title{A {B}}``
    keeps its inner group."""
    out: list[str] = []
    pos = 0
    while match := _COMMAND.search(text, pos):
        end = _closing_brace(text, match.end())
        if end is None:  # cut off: keep the rest as it is
            break
        body = " ".join(
            part.strip() for part in re.split(r"\\\\|\n", text[match.end() : end]) if part.strip()
        )
        marker = _HEADINGS.get(match.group(1))
        out.append(text[pos : match.start()])
        out.append(f"\n\n{marker} {body}\n\n" if marker else f"\n\n{body}\n\n")
        pos = end + 1
    out.append(text[pos:])
    return "".join(out)


def _closing_brace(text: str, start: int) -> int | None:
    depth = 1
    for i in range(start, len(text)):
        if text[i] == "{" and text[i - 1] != "\\":
            depth += 1
        elif text[i] == "}" and text[i - 1] != "\\":
            depth -= 1
            if depth == 0:
                return i
    return None


def _table(body: str) -> str:
    rows: list[list[str]] = []
    for line in re.split(r"\\\\", _RULES.sub("", body)):
        if not line.strip():
            continue
        cells: list[str] = []
        for cell in line.split("&"):
            cell = cell.strip()
            if spread := _MULTICOLUMN.fullmatch(cell):
                cells += [spread.group(2).strip()] + [""] * (int(spread.group(1)) - 1)
            else:
                cells.append(cell)
        rows.append([c.replace("|", "\\|").replace("\n", " ") for c in cells])
    if not rows:
        return ""
    width = max(len(r) for r in rows)
    rows = [r + [""] * (width - len(r)) for r in rows]
    lines = ["| " + " | ".join(rows[0]) + " |", "|" + " --- |" * width]
    lines += ["| " + " | ".join(r) + " |" for r in rows[1:]]
    return "\n".join(lines)


def _items(kind: str, body: str) -> str:
    items = [item.strip() for item in body.split("\\item") if item.strip()]
    if kind == "enumerate":
        return "\n".join(f"{n}. {item}" for n, item in enumerate(items, 1))
    return "\n".join(f"- {item}" for item in items)


FAMILY = GotOcr(
    key="got-ocr",
    label="GOT-OCR2",
    prompts={"markdown": "OCR with format: ", "text": "OCR: "},
    page_size=1024,
    follows_instructions=False,
    hints=("got-ocr", "gotocr"),
    sources={
        "prompt": "github.com/Ucas-HaoranWei/GOT-OCR2.0 GOT/demo/run_ocr_2.0.py; transformers GotOcr2",
        "page size": "mlx-vlm models/got/processing_got.py (GotOcrImageProcessor: 1024x1024)",
        "answer format": "transformers docs model_doc/got_ocr2.md (Formatted text inference)",
    },
)
