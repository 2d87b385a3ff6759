"""dots.ocr (rednote-hilab): one JSON list of layout cells ``{bbox, category, text}`` per page.

Prompts: https://github.com/rednote-hilab/dots.ocr/blob/master/dots_ocr/utils/prompts.py
(``prompt_layout_all_en``: Table text is HTML, Formula LaTeX, everything else Markdown; Picture cells have
no text; copied verbatim, trailing newline included; ``prompt_ocr``: plain text without page header and
footer). The cells become Markdown the way dots.ocr's ``layoutjson2md`` does.
"""

from __future__ import annotations

import json
import re

from textdrop.engine.vlm.families import Family
from textdrop.engine.vlm.families.doctags import one_line
from textdrop.engine.vlm.postprocess import JSON_FENCES, latex_controls, repair_json, strip_outer_fence

LAYOUT = """Please output the layout information from the PDF image, including each layout element's bbox, its category, and the corresponding text content within the bbox.

1. Bbox format: [x1, y1, x2, y2]

2. Layout Categories: The possible categories are ['Caption', 'Footnote', 'Formula', 'List-item', 'Page-footer', 'Page-header', 'Picture', 'Section-header', 'Table', 'Text', 'Title'].

3. Text Extraction & Formatting Rules:
    - Picture: For the 'Picture' category, the text field should be omitted.
    - Formula: Format its text as LaTeX.
    - Table: Format its text as HTML.
    - All Others (Text, Title, etc.): Format their text as Markdown.

4. Constraints:
    - The output text must be the original text from the image, with no translation.
    - All layout elements must be sorted according to human reading order.

5. Final Output: The entire output must be a single JSON object.
"""  # noqa: E501
TEXT = "Extract the text content from this image."


class DotsOcr(Family):
    def convert(self, answer: str) -> str:
        answer = strip_outer_fence(answer, JSON_FENCES)
        converted = dots_layout_to_markdown(answer)
        return answer if converted is None else converted


FAMILY = DotsOcr(
    key="dots-ocr",
    label="dots.ocr",
    prompts={"markdown": LAYOUT, "text": TEXT},
    page_size=2200,
    hints=("dots.ocr", "dots-ocr"),
    sources={"prompt": "github.com/rednote-hilab/dots.ocr dots_ocr/utils/prompts.py"},
)


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
            body = "# " + one_line(body)
        elif category == "Section-header" and not body.startswith("#"):
            body = "## " + one_line(body)
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
    text = latex_controls(text)
    data: object = None
    for candidate in (text, repair_json(text)):
        try:
            data = json.loads(candidate, strict=False)
            break
        except ValueError:
            continue
    if data is None:  # cut off or otherwise broken: keep the cells that parse, in order
        data = _json_prefix_items(repair_json(text))
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
