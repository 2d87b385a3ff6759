"""What a result puts on the clipboard: plain text in reading order, with Markdown and HTML alongside.

One clipboard item carries three formats (MIME types): ``text/plain`` (what a chat box, a form field or a
terminal pastes), ``text/markdown`` and ``text/html`` (what a rich editor such as a word processor or a
mail composer pastes: headings, lists, and tables as HTML tables). Only the Qt handler can offer several
formats; the command-line tools (xclip, wl-copy, pbcopy …) put the plain text alone. See
``docs/adr/012-tray-usability.md``.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from markdown_it import MarkdownIt

    from textdrop.engine.result import OcrResult

MARKDOWN_MIME = "text/markdown"
"""The MIME type of the Markdown format (RFC 7763)."""


@dataclass(frozen=True)
class ClipboardContent:
    """The formats of one clipboard item.

    Attributes:
        text: ``text/plain``; what every handler puts.
        markdown: ``text/markdown``, or None.
        html: ``text/html`` (a fragment), or None.
    """

    text: str
    markdown: str | None = None
    html: str | None = None


@cache
def _renderer() -> MarkdownIt:
    from markdown_it import MarkdownIt

    # CommonMark plus GFM tables and strikethrough; raw HTML passes through (VLMs write HTML tables).
    return MarkdownIt("commonmark", {"html": True}).enable(["table", "strikethrough"])


def markdown_html(markdown: str) -> str:
    """``markdown`` rendered as an HTML fragment (pipe tables become ``<table>``)."""
    return _renderer().render(markdown)


def markdown_content(markdown: str, *, markdown_as_text: bool = False) -> ClipboardContent:
    """The clipboard item for Markdown alone (a watched folder's sidecar): its plain text flattened by
    :func:`textdrop.engine.vlm.postprocess.markdown_to_text`, or the Markdown itself with
    ``markdown_as_text``."""
    from textdrop.engine.vlm.postprocess import markdown_to_text

    markdown = markdown.strip()
    text = markdown if markdown_as_text else markdown_to_text(markdown).strip()
    if not text:
        return ClipboardContent("")
    return ClipboardContent(text, markdown, markdown_html(markdown))


def result_content(result: OcrResult, *, markdown_as_text: bool = False) -> ClipboardContent:
    """The clipboard item for ``result``.

    Args:
        result: a recognised document; its pages' plain text (reading order) is the ``text/plain``
            format, pages separated by a blank line.
        markdown_as_text: put the Markdown as the plain text too (the ``[desktop] copy_markdown`` setting,
            for people who paste into Markdown editors).

    Returns:
        The content; ``text`` is empty when nothing was read.
    """
    markdown = result.markdown.strip()
    text = (
        markdown if markdown_as_text else "\n\n".join(p.text.strip() for p in result.pages if p.text.strip())
    )
    if not text:
        return ClipboardContent("")
    return ClipboardContent(text, markdown or None, markdown_html(markdown) if markdown else None)
