"""Cleaning model answers: recorded real outputs → exact Markdown, text and JSON; repetition loops.

The recorded answers under ``tests/data/vlm_outputs`` and their sources are listed in its ``SOURCES.md``.
"""

from __future__ import annotations

import random
import re
import time
from pathlib import Path

import pytest

from textdrop.engine.vlm.families.doctags import doctags_to_markdown
from textdrop.engine.vlm.postprocess import (
    RepetitionDetector,
    clean,
    markdown_to_text,
    parse_json,
    split_front_matter,
)

DATA = Path(__file__).parent / "data" / "vlm_outputs"


def recorded(name: str) -> str:
    return (DATA / name).read_text(encoding="utf-8")


# --- granite-docling: DocTags ------------------------------------------------------------------------------

GRANITE_TABLES = """\
TABLE 35: UNION-STATE BREAKDOWN OF IMPRISONMENT CLAUSES BY CATEGORIES

| Category | Number of clauses in Union laws | In percent | Number of clauses in State laws | In percent |
| --- | --- | --- | --- | --- |
| Commercial | 529 | 10.1% | 817 | 3.9% |
| Environment, Health and Safety | 834 | 15.9% | 345 | 1.7% |
| Finance & Taxation | 41 | 0.8% | 888 | 4.2% |
| General | 75 | 1.4% | 360 | 1.7% |
| Industry Specific | 2979 | 56.9% | 1200 | 5.7% |
| Labour | 534 | 10.2% | 17285 | 82.7% |
| Secretarial | 247 | 4.7% | 0 | 0.0% |

TABLE 36: THREE CASE STUDIES ON MANUFACTURING COMPLIANCES*

| Compliances | Small | Medium | Large |
| --- | --- | --- | --- |
| Total Applicable Compliances | 669 | 3,109 | 5,796 |
| Compliances with imprisonment | 461 | 2,172 | 4,085 |
| Percentage of imprisonment clauses | 69% | 70% | 70% |

\\* These are real data from three companies operating in the automotive components business

TABLE 37: BREAKDOWN OF IMPRISONMENT CLAUSES IN MANUFACTURING CASE STUDIES*

|  | Small | Medium | Large |
| --- | --- | --- | --- |
| Less than 3 months | 25 | 82 | 185 |
| 3 months to less than 1 year | 187 | 699 | 1,220 |
| 1 year to less than 3 years | 178 | 1,070 | 1,964 |
| 3 years to less than 5 years | 59 | 245 | 505 |
| 5 years to 10 years | 12 | 76 | 211 |

\\* In Table 36"""


def test_granite_docling_tables_become_markdown_tables_with_captions() -> None:
    # Location tokens gone, <ched> header rows, captions before their tables, "Appendices" page header
    # and "85" page footer dropped, the footnote's "*" escaped so it does not become a bullet.
    assert clean("granite-docling", recorded("granite_docling_tables.dt")) == GRANITE_TABLES


def test_granite_docling_tables_as_text_are_tab_separated_rows() -> None:
    text = clean("granite-docling", recorded("granite_docling_tables.dt"), "text")
    assert (
        "Category\tNumber of clauses in Union laws\tIn percent\tNumber of clauses in State laws\tIn percent"
        in text
    )
    assert "\tSmall\tMedium\tLarge\n5 years" not in text  # rows stay in order
    assert "\nLess than 3 months\t25\t82\t185\n" in text
    assert "\n* These are real data from three companies" in text
    assert "|" not in text and "---" not in text


GRANITE_THEORY = (
    "Figure 8.1: a) P6238 CUSSONS free and forced vortex apparatus, b) push-in orifices, c) free vortex "
    "measuring caliper, d) force vortex measuring probes\n\n"
    "## 7. THEORY\n\n"
    "Two types of vortices are distinguished in the dynamics of the motion: forced and free vortices. "
    "The forced vortex is caused by external forces on the fluid, such as the impeller of a pump, and the "
    "free vortex naturally occurs in the flow and can be observed in a drain or in the atmosphere of a "
    "tornado.\n\n"
    "## 7.1. FREE VORTEX\n\n"
    "A free vortex is formed when water flows out of a vessel through a central hole in the base "
    "(Figure 8.2). The degree of the rotation depends on the initial disturbance. In a free cylindrical "
    "vortex, the velocity varies inversely with the distance from the axis of rotation (Figure 8.3).\n\n"
    "$$\n\\upsilon = \\frac { k } { r } \\quad \\quad ( 1 )\n$$\n\n"
    "The equation governing the surface profile is derived from the Bernoulli's theorem:\n\n"
    "$$\n\\upsilon ^ { 2 } = + \\, z = C \\quad \\quad ( 2 )\n$$\n\n"
    "Substituting Equation (1) into (2) will give a new expression:\n\n"
    "$$\n\\frac { k ^ { 2 } } { 2 g r ^ { 2 } } + \\, z = C \\quad \\quad ( 3 )\n$$\n\n"
    "or:"
)


def test_granite_docling_headers_formulas_and_picture_captions() -> None:
    # The picture is dropped and its caption kept; section_header_level_1 is "##" (the title is "#").
    assert clean("granite-docling", recorded("granite_docling_theory.dt")) == GRANITE_THEORY


def test_granite_docling_answer_cut_off_with_assistant_prefix() -> None:
    markdown = clean("granite-docling", recorded("granite_docling_page_with_pic.dt"))
    assert markdown + "\n" == recorded("granite_docling_page_with_pic.expected.md")
    assert "Assistant" not in markdown and "<" not in markdown
    assert "Optimized Table Tokenization" not in markdown  # the page header
    assert markdown.endswith("We find strong indications that this pattern")  # the unclosed last element


def test_doctags_merged_cells_become_an_html_table() -> None:
    markdown = doctags_to_markdown(recorded("granite_docling_constructed.dt"))
    assert (
        "This is the caption of table 1.\n\n"
        "<table>\n"
        '<tr><td rowspan="2">Product</td><td colspan="2">Years</td></tr>\n'
        "<tr><td>2016</td><td>2017</td></tr>\n"
        "<tr><td>Apple</td><td>49823</td><td>695944</td></tr>\n"
        "</table>\n\n"
        "This is the caption of figure 1.\n\n"
        "This is the caption of figure 2.\n\n"
    ) in markdown


def test_doctags_merged_cells_as_text_keep_columns_aligned() -> None:
    text = clean("granite-docling", recorded("granite_docling_constructed.dt"), "text")
    assert "Product\tYears\n\t2016\t2017\nApple\t49823\t695944" in text


def test_doctags_lists_code_formulas_inline_groups_and_key_values() -> None:
    # Compare docling's own Markdown of the same document: constructed_doc.embedded.md.gt in docling-core.
    markdown = doctags_to_markdown(recorded("granite_docling_constructed.dt"))
    assert markdown.startswith(
        "- item of leading list\n\n# Title of the Document\n\nAuthor 1\nAffiliation 1\n\n"
    )
    assert (
        "- list item 1\n- list item 2\n- list item 3\n    1. list item 3.a\n    2. list item 3.b\n"
        "    3. list item 3.c\n        1. list item 3.c.i\n- list item 4"
    ) in markdown
    assert (
        "    - item 1 of sub list\n"
        '    - Here a code snippet: `print("Hello world")` (to be displayed inline)\n'
        "    - Here a formula: $E=mc^2$ (to be displayed inline)"
    ) in markdown
    assert (
        'Here a code block:\n\n```python\nprint("Hello world")\n```\n\n'
        "Here a formula block:\n\n$$\nE=mc^2\n$$"
    ) in markdown
    assert "\n\nnumber: 1\n\n" in markdown
    assert (
        "1. Item 1 in A\n2. Item 2 in A\n3. Item 3 in A\n    1. Item 1 in B\n    2. Item 2 in B\n"
        "        1. Item 1 in C\n        2. Item 2 in C\n    3. Item 3 in B\n4. Item 4 in A"
    ) in markdown
    assert markdown.endswith("- List item without parent list group\n\nThe end.")


def test_doctags_cut_off_inside_a_table() -> None:
    answer = (
        "<doctag><text><loc_1><loc_2><loc_3><loc_4>Hello</text>"
        "<otsl><loc_1><ched>A<ched>B<nl><fcel>1<fcel>2<nl><fcel>3"
    )
    assert clean("granite-docling", answer) == "Hello\n\n| A | B |\n| --- | --- |\n| 1 | 2 |\n| 3 |  |"


def test_doctags_cell_text_with_pipes_and_checkboxes() -> None:
    answer = (
        "<doctag><checkbox_selected><loc_1>Paid</checkbox_selected>"
        "<checkbox_unselected><loc_2>Refunded</checkbox_unselected>"
        "<otsl><fcel>a|b<fcel>c<nl></otsl></doctag>"
    )
    assert clean("granite-docling", answer) == "☑ Paid\n\n☐ Refunded\n\n| a\\|b | c |\n| --- | --- |"


def test_granite_docling_plain_answer_is_left_as_markdown() -> None:
    assert clean("granite-docling", "Yes, the page has 2 tables.") == "Yes, the page has 2 tables."


# --- DeepSeek-OCR: grounding tags --------------------------------------------------------------------------


def test_deepseek_ocr_grounding_labels_and_boxes_are_removed() -> None:
    markdown = clean("deepseek-ocr", recorded("deepseek_ocr_title.md"))
    assert markdown + "\n" == recorded("deepseek_ocr_title.expected.md")
    assert "<|" not in markdown and "[[" not in markdown and "<center>" not in markdown
    assert markdown.startswith(
        "# DocLayNet: A Large Human-Annotated Dataset for Document-Layout Analysis\n\n"
    )
    # the image's caption stays, the image itself (a box without text) goes
    assert (
        "\n\nFigure 1: Four examples of complex page layouts across different document categories\n\n"
        in markdown
    )
    assert "approximately \\(10\\%\\) behind" in markdown  # LaTeX untouched


def test_deepseek_ocr_boxes_printed_without_special_tokens_are_removed() -> None:
    # With skip_special_tokens the server prints the tags' insides: "label[[x0, y0, x1, y1]]" lines
    # (docling's DeepSeek-OCR parser, docling/utils/deepseekocr_utils.py, reads the same form).
    answer = (
        "sub_title[[217, 209, 520, 225]]\n### 5.1 Hyper Parameter Optimization  \n\n"
        "text[[217, 230, 785, 321]]\nWe have chosen the PubTabNet data set.<｜end▁of▁sentence｜>"
    )
    assert (
        clean("deepseek-ocr", answer)
        == "### 5.1 Hyper Parameter Optimization\n\nWe have chosen the PubTabNet data set."
    )


def test_deepseek_ocr_reference_text_is_kept() -> None:
    answer = (
        "<|ref|>Hello world<|/ref|><|det|>[[10, 20, 300, 40]]<|/det|>"
        "<|ref|>Next line<|/ref|><|det|>[[1, 2, 3, 4]]<|/det|>"
    )
    assert clean("deepseek-ocr", answer) == "Hello world\nNext line"


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        # Qwen2-VL / Qwen2.5-VL grounding tokens, as printed with skip_special_tokens=False
        (
            "<|object_ref_start|>language switch<|object_ref_end|>"
            "<|box_start|>(576,12),(592,42)<|box_end|><|im_end|>",
            "language switch",
        ),
        (
            "Total: <|object_ref_start|>12.00<|object_ref_end|>"
            "<|quad_start|>(1,2),(3,4),(5,6),(7,8)<|quad_end|> EUR",
            "Total: 12.00 EUR",
        ),
        # Qwen-VL (v1): <ref>text</ref><box>(x1,y1),(x2,y2)</box>
        (
            "The total is <ref>12.00 EUR</ref><box>(120,450),(380,480)</box> paid by card.",
            "The total is 12.00 EUR paid by card.",
        ),
        # "qwenvl markdown" image placeholders and "QwenVL HTML" data-bbox attributes
        ("# Title\n\n<!-- Image (100, 200, 300, 400) -->\n\nText.", "# Title\n\nText."),
        ('<p data-bbox="10 20 30 40">Text</p>', "<p>Text</p>"),
    ],
)
def test_qwen_grounding_tags_keep_the_referenced_text(answer: str, expected: str) -> None:
    assert clean("qwen-vl", answer) == expected
    assert clean("generic", answer) == expected


def test_ref_tags_without_boxes_are_not_touched() -> None:
    assert clean("generic", "Cite it as <ref>Smith 2020</ref>.") == "Cite it as <ref>Smith 2020</ref>."


# --- fences ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "opening", ["```markdown", "```md", "```", "```html", "~~~markdown", "```Markdown  "]
)
def test_fence_wrapping_the_whole_answer_is_stripped(opening: str) -> None:
    closing = opening[:3]
    assert (
        clean("qwen-vl", f"{opening}\n# Receipt\n\nTotal: 12.00\n{closing}\n") == "# Receipt\n\nTotal: 12.00"
    )


def test_code_block_inside_the_document_stays() -> None:
    answer = "# Script\n\nRun this:\n\n```python\nprint('hi')\n```\n"
    assert clean("qwen-vl", answer) == "# Script\n\nRun this:\n\n```python\nprint('hi')\n```"


def test_wrapping_fence_around_a_document_with_a_code_block() -> None:
    answer = "```markdown\n# Script\n\n```bash\nls -la\n```\n\nDone.\n```"
    assert clean("qwen-vl", answer) == "# Script\n\n```bash\nls -la\n```\n\nDone."


def test_document_that_starts_and_ends_with_code_blocks_is_not_unwrapped() -> None:
    answer = "```\ncode one\n```\n\nText between.\n\n```\ncode two\n```"
    assert clean("generic", answer) == answer


def test_fenced_code_answer_is_kept_as_code() -> None:
    # a screenshot of code: the fence is the document's, not a wrapper
    assert clean("generic", "```python\nx = 1\n```") == "```python\nx = 1\n```"


def test_unclosed_wrapping_fence_of_a_cut_off_answer_is_stripped() -> None:
    assert (
        clean("generic", "```md\n# Cut off\n\nThe model ran out of tok")
        == "# Cut off\n\nThe model ran out of tok"
    )


# --- olmOCR: front matter ----------------------------------------------------------------------------------


def test_olmocr_front_matter_is_dropped() -> None:
    answer = recorded("olmocr_edgar.md")
    body = answer.split("---\n", 2)[2].strip()
    assert clean("olmocr", answer) == body
    assert clean("olmocr", answer).startswith(
        "Edgar (or Eadgar;[1] c. 944 – 8 July 975) was King of the English"
    )
    assert "primary_language" not in clean("olmocr", answer, "text")


def test_olmocr_page_without_text_is_empty() -> None:
    assert clean("olmocr", recorded("olmocr_blank.md")) == ""
    assert clean("olmocr", "null") == ""


def test_olmocr_front_matter_reports_the_rotation() -> None:
    meta, body = split_front_matter(
        "---\nprimary_language: en\nis_rotation_valid: False\nrotation_correction: 90\nis_table: False\n"
        "is_diagram: False\n---\n# Heading\n\n---\n\nAfter a rule."
    )
    assert meta["rotation_correction"] == "90" and meta["is_rotation_valid"] == "False"
    assert body == "# Heading\n\n---\n\nAfter a rule."


def test_a_document_starting_with_a_rule_keeps_it() -> None:
    answer = "---\n\nIntro text.\n\n---\n\nMore."
    assert clean("generic", answer) == answer


# --- dots.ocr: layout JSON ---------------------------------------------------------------------------------


def test_dots_ocr_layout_becomes_markdown_in_reading_order() -> None:
    # Page-header and Picture cells dropped; the LaTeX backslashes the model left unescaped survive.
    assert clean("dots-ocr", recorded("dots_ocr_layout.json")) == (
        "Figure 8: The true (blue) and measured (red) densities of prey (left) and predators (right).\n\n"
        "and perturbing the calculated values $N(t^)$ and $P(t^)$ with independent Gaussian noise "
        "$\\epsilon \\sim N(0, 1)$ (Fig. 8). Our aim is to predict the mean density of predators "
        "$\\mathbb{E}(P)$ over the same period."
    )


def test_dots_ocr_titles_formulas_tables_and_a_cut_off_answer() -> None:
    answer = (
        '```json\n[{"bbox": [1, 2, 3, 4], "category": "Title", "text": "Annual Report"}, '
        '{"bbox": [1, 2, 3, 4], "category": "Section-header", "text": "Results"}, '
        '{"bbox": [1, 2, 3, 4], "category": "Formula", "text": "E = mc^2"}, '
        '{"bbox": [1, 2, 3, 4], "category": "Formula", "text": "$$x^2$$"}, '
        '{"bbox": [1, 2, 3, 4], "category": "Table", "text": "<table><tr><td>a</td></tr></table>"}, '
        '{"bbox": [1, 2, 3, 4], "category": "Page-footer", "text": "7"}, '
        '{"bbox": [1, 2, 3, 4], "category": "Text", "text": "cut off he'
    )
    assert clean("dots-ocr", answer) == (
        "# Annual Report\n\n## Results\n\n$$\nE = mc^2\n$$\n\n$$\nx^2\n$$\n\n"
        "<table><tr><td>a</td></tr></table>"
    )


def test_dots_ocr_raw_latex_backslashes_are_repaired() -> None:
    answer = (
        '[{"bbox": [1, 2, 3, 4], "category": "Formula", "text": "\\frac{a}{b} = \\theta \\nu"}, '
        '{"bbox": [1, 2, 3, 4], "category": "Text", "text": "Line\\nNext \\epsilon"}]'
    )
    assert clean("dots-ocr", answer) == "$$\n\\frac{a}{b} = \\theta \\nu\n$$\n\nLine\nNext \\epsilon"


def test_dots_ocr_plain_ocr_answer_is_left_alone() -> None:
    assert clean("dots-ocr", "Plain text from the OCR prompt.\n") == "Plain text from the OCR prompt."


# --- PaddleOCR-VL ------------------------------------------------------------------------------------------


def test_paddleocr_vl_plain_text_is_unchanged() -> None:
    assert (
        clean("paddleocr-vl", recorded("paddleocr_vl_receipt.txt"))
        == "CINNAMON SUGAR\n1 x 17,000\n17,000\nSUB TOTAL\n17,000"
    )


def test_paddleocr_vl_bare_otsl_table_answer_becomes_a_table() -> None:
    # "Table Recognition:" answers in OTSL cell tokens without an <otsl> wrapper (PaddleOCR-VL model card;
    # candle's paddleocr_vl postprocess_table_output converts the same tokens).
    assert clean("paddleocr-vl", "<fcel>Name<fcel>Qty<nl><fcel>Tea<fcel>2<nl>") == (
        "| Name | Qty |\n| --- | --- |\n| Tea | 2 |"
    )
    assert clean("paddleocr-vl", "<fcel>Name<fcel>Qty<nl><fcel>Tea<fcel>2<nl><fcel>Total<lcel><nl>") == (
        "<table>\n<tr><td>Name</td><td>Qty</td></tr>\n<tr><td>Tea</td><td>2</td></tr>\n"
        '<tr><td colspan="2">Total</td></tr>\n</table>'
    )


# --- Nanonets and whitespace -------------------------------------------------------------------------------

NANONETS = (
    "# Invoice\n\n<watermark>COPY</watermark>\n\n<img>A red company logo</img>\n\n"
    "☑ Paid  \n☐ Refunded\n\n\n\n"
    "<table><tr><th>Item</th><th>Price</th></tr><tr><td>Tea</td><td>3.50</td></tr></table>"
    "\n\n<page_number>1/2</page_number>\n"
)  # the tags of the Nanonets-OCR2 model card (https://huggingface.co/nanonets/Nanonets-OCR2-3B)


def test_nanonets_tags_stay_in_markdown_and_flatten_in_text() -> None:
    assert clean("nanonets-ocr", NANONETS) == (
        "# Invoice\n\n<watermark>COPY</watermark>\n\n<img>A red company logo</img>\n\n☑ Paid\n☐ Refunded\n\n"
        "<table><tr><th>Item</th><th>Price</th></tr><tr><td>Tea</td><td>3.50</td></tr></table>\n\n"
        "<page_number>1/2</page_number>"
    )
    assert (
        clean("nanonets-ocr", NANONETS, "text")
        == "Invoice\n\nCOPY\n\n☑ Paid\n☐ Refunded\n\nItem\tPrice\nTea\t3.50\n\n1/2"
    )


def test_trailing_whitespace_and_blank_lines_are_normalised_outside_code() -> None:
    answer = "\n\nTitle   \n\n\n\n\nBody\t\n\n```\ncode\n\n\n\nmore code\n```\n\n\n"
    assert clean("generic", answer) == "Title\n\nBody\n\n```\ncode\n\n\n\nmore code\n```"


def test_end_tokens_and_reasoning_blocks_are_removed() -> None:
    assert (
        clean("qwen-vl", "<think>\nThe user wants OCR.\n</think>\n\n# Heading\n\nBody.<|im_end|>")
        == "# Heading\n\nBody."
    )
    assert clean("qwen-vl", "reasoning the template opened</think>Answer") == "Answer"
    assert clean("qwen-vl", "<think>never finished") == ""
    assert clean("generic", "Strike <s>this</s>") == "Strike <s>this</s>"


def test_unknown_mode_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="unknown mode"):
        clean("generic", "x", "html")


# --- markdown_to_text --------------------------------------------------------------------------------------

MARKDOWN = """\
# Invoice **No. 42**

Some *emphasis*, __strong__, `code_span` and a [link](https://example.com "t") and ![logo](logo.png).
Price is $5 and $10, math $x_1^2$ and \\(a*b*c\\) stays; snake_case_word and 2*3*4 stay.

> quoted line
- item one
    - nested item
* item two
1. first
2) second
- [ ] todo
- [x] done

| Item | Qty | Price |
|:-----|----:|------:|
| **Tea** | 2 | 3\\|50 |
| Cake | 1 | 4.00 |

<table><caption>Totals</caption><tr><th rowspan="2">A</th><th colspan="2">B</th></tr>\
<tr><td>b1</td><td>b2</td></tr><tr><td>x</td><td>y &amp; z</td><td>w<br>v</td></tr></table>

---

Line one<br>Line two &lt;3 <https://example.org>

```python
def f(x):
    return x * 2  # **not bold**
```

$$
E = mc^2
$$
[ref]: https://example.com
"""

TEXT = """\
Invoice No. 42

Some emphasis, strong, code_span and a link and .
Price is $5 and $10, math $x_1^2$ and \\(a*b*c\\) stays; snake_case_word and 2*3*4 stay.

quoted line
• item one
    • nested item
• item two
1. first
2) second
☐ todo
☑ done

Item\tQty\tPrice
Tea\t2\t3|50
Cake\t1\t4.00

Totals
A\tB
\tb1\tb2
x\ty & z\tw v

Line one
Line two <3 https://example.org

def f(x):
    return x * 2  # **not bold**

$$
E = mc^2
$$"""


def test_markdown_to_text() -> None:
    assert markdown_to_text(MARKDOWN) == TEXT


def test_clean_text_mode_flattens_the_cleaned_markdown() -> None:
    answer = "```markdown\n## Total\n\n| Item | Price |\n| --- | --- |\n| Tea | **3.50** |\n```"
    assert clean("qwen-vl", answer, "text") == "Total\n\nItem\tPrice\nTea\t3.50"


# --- JSON --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        (
            '```json\n{"total": "12.50", "items": [{"name": "Tea"}]}\n```',
            {"total": "12.50", "items": [{"name": "Tea"}]},
        ),
        ('Here is the data:\n```json\n{"total": 12.5}\n```\nAnything else?', {"total": 12.5}),
        (
            'Sure! The receipt says {"vendor": "ACME", "total": 3} and that is all.',
            {"vendor": "ACME", "total": 3},
        ),
        ('{"a": 1, "b": [1, 2,],}', {"a": 1, "b": [1, 2]}),
        ("{'vendor': 'ACME', 'paid': True, 'tip': None}", {"vendor": "ACME", "paid": True, "tip": None}),
        ('The items [1] are: [{"x": 1}, {"x": 2}]', [{"x": 1}, {"x": 2}]),
        ('["a", "b"]', ["a", "b"]),
        ('<think>maybe {"no": 1}</think>{"yes": 2}<|im_end|>', {"yes": 2}),
        ('{"formula": "\\frac{1}{2}"}', {"formula": "\\frac{1}{2}"}),
    ],
)
def test_parse_json_finds_the_object(answer: str, expected: object) -> None:
    assert parse_json(answer) == expected


@pytest.mark.parametrize(
    ("answer", "reason"),
    [
        ("No JSON here, sorry.", "no JSON object"),
        ("", "no JSON object"),
        ('{"total": 12.5, "items": [{"name": "Tea", "qty": 2}, {"name": "Ca', "incomplete"),
        ('{"a": nope}', "invalid"),
        ("See note [1].", "no JSON object"),
    ],
)
def test_parse_json_says_why_it_failed(answer: str, reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        parse_json(answer)


def test_clean_json_mode_returns_the_json_text_only() -> None:
    answer = 'Here you go:\n```json\n{"total": "12.50",\n "items": []}\n```\nLet me know!'
    assert clean("qwen-vl", answer, "json") == '{"total": "12.50",\n "items": []}'
    assert clean("generic", 'Result: {"a": [1, 2]} done', "json") == '{"a": [1, 2]}'
    assert clean("generic", "no json", "json") == "no json"


# --- RepetitionDetector ------------------------------------------------------------------------------------


def stream(text: str, seed: int, detector: RepetitionDetector | None = None) -> RepetitionDetector:
    """Feed ``text`` in chunks of 1 to 7 characters, like a token stream."""
    detector = detector or RepetitionDetector()
    rng = random.Random(seed)
    i = 0
    while i < len(text):
        size = rng.randint(1, 7)
        detector.feed(text[i : i + size])
        i += size
    return detector


SENTENCE = "The quick brown fox jumps over the lazy dog. "
ROW = "| Widget | 1 | 0.00 |\n"
LOOPS = {
    "sentence ten times": ("Intro paragraph.\n\n" + SENTENCE * 10, SENTENCE),
    "sentence ten times, one per line": (
        "Intro.\n" + "The total amount is due within thirty days.\n" * 10,
        None,
    ),
    "0.0.0. over 200 characters": ("Value: " + "0." * 100, "0."),
    "table row past the lines a page holds": ("| Item | Qty | Price |\n|---|---|---|\n" + ROW * 170, ROW),
    "empty table row past the lines a page holds": ("| a | b |\n|---|---|\n" + "| | |\n" * 170, "| | |\n"),
    "word fifty times": ("Result: " + "hello " * 50, "hello "),
    "short word fifty times": ("Result: " + "ok " * 50, "ok "),
    "leader dots far too long": ("Total " + "." * 700, "."),
    "paragraph repeated": (
        ("Lorem ipsum dolor sit amet, consectetur adipiscing elit. " * 8 + "\n\n") * 15,
        None,
    ),
    "Chinese sentence": ("说明：" + "这是一个测试句子。" * 30, "这是一个测试句子。"),
}
LEGITIMATE = {
    "similar table rows": "| # | Amount |\n|---|---|\n" + "".join(f"| {i} | 0.00 |\n" for i in range(1, 101)),
    "wide separator row": "|"
    + "---|" * 45
    + "\n| "
    + " | ".join("abcdefghijklmnopqrstuvwxyzabcdefghijklmnopqrs")
    + " |\n",
    "spaced separator row": "|" + " --- |" * 60 + "\n",
    "table of contents": "".join(f"Chapter {i} " + "." * 150 + f" {i * 7}\n" for i in range(1, 30)),
    "list of 20 similar items": "".join(f"- Item number {i}\n" for i in range(1, 21)),
    "form fields": "Name: " + "_" * 300 + "\nDate: " + "_" * 300 + "\n",
    "row of 25 zero cells": "| " + " | ".join(["0.00"] * 25) + " |\n",
    "table with 40 empty rows": "| Date | Item | Amount |\n|---|---|---|\n" + "| | | |\n" * 40,
    "checkbox list": "Checklist\n\n" + "- [ ] \n" * 30 + "- [x] Done\n",
    "repeated form lines": "Attendees\n\n" + "Name: ____________ Signature: ____________\n" * 25,
    "dotted leader lines": "Notes\n" + ("." * 80 + "\n") * 40,
    "long numeric table": "| Q1 | Q2 | Q3 |\n|---|---|---|\n" + "| 0.00 | 0.00 | 0.00 |\n" * 60,
    "a real page": recorded("deepseek_ocr_title.md") + recorded("olmocr_edgar.md"),
}


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("name", LOOPS)
def test_repetition_loops_are_detected(name: str, seed: int) -> None:
    text, unit = LOOPS[name]
    detector = stream(text, seed)
    assert detector.looping, name
    assert detector.reason
    keep = detector.keep_chars
    assert keep is not None and keep < len(text)
    kept = text[:keep]
    if unit is not None:  # one copy of the repeated unit kept (cut at a word or line end), not two
        assert unit.strip() in kept
        assert kept.count(unit.strip()) == 1 or len(unit.strip()) <= 2
        assert len(kept) < len(text) - 3 * len(unit.strip())


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("name", LEGITIMATE)
def test_legitimate_repeats_are_not_loops(name: str, seed: int) -> None:
    detector = stream(LEGITIMATE[name], seed)
    assert not detector.looping, detector.reason
    assert detector.keep_chars is None


def test_detection_fires_as_soon_as_the_tenth_copy_is_complete() -> None:
    detector = RepetitionDetector()
    assert not detector.feed("Intro. ")
    for _ in range(9):
        assert not detector.feed(SENTENCE)
    assert detector.feed(SENTENCE)
    assert detector.looping


def test_looping_is_sticky_and_a_whole_text_can_be_fed_at_once() -> None:
    detector = RepetitionDetector()
    assert detector.feed("Header\n" + ROW * 170)
    assert detector.feed("completely different text")
    assert detector.looping
    assert ("Header\n" + ROW * 170)[: detector.keep_chars] == "Header\n" + ROW


def test_keep_chars_counts_from_the_start_of_a_long_stream() -> None:
    prefix = recorded("olmocr_edgar.md") * 5  # longer than the tail the detector keeps
    detector = stream(prefix + "0." * 150, seed=1)
    assert detector.looping
    assert detector.keep_chars == len(prefix) + 2


def test_thresholds_can_be_chosen() -> None:
    text = "Result: " + "hello " * 50
    assert stream(text, 0).looping
    assert not stream(text, 0, RepetitionDetector(min_repeats=60, many_repeats=60)).looping
    assert not stream(text, 0, RepetitionDetector(max_period=5)).looping  # "hello " has 6 characters
    longer_unit = stream(text, 0, RepetitionDetector(min_period=7))  # then "hello hello " is the unit
    assert longer_unit.looping
    reported = re.match(r"'(.*)' repeated", longer_unit.reason or "")
    assert reported and len(reported.group(1)) == 12


def test_invalid_thresholds_are_rejected() -> None:
    with pytest.raises(ValueError):
        RepetitionDetector(min_repeats=0)
    with pytest.raises(ValueError):
        RepetitionDetector(min_period=50, max_period=10)


def test_detector_cost_stays_small_per_chunk() -> None:
    table = "".join(f"| {i} | 0.00 | 0.00 | 0.00 |\n" for i in range(1500))
    toc = "".join(f"Section {i} " + "." * 120 + f" {i}\n" for i in range(150))
    started = time.perf_counter()
    for text in (table, toc):
        assert not stream(text, 0).looping
    assert time.perf_counter() - started < 5  # about 0.1 s here; 5 s only catches quadratic behaviour
