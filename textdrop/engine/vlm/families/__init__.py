"""Model families: what differs between OCR vision-language models, kept in one module per family.

A *family* is every model trained the same way: the same prompt, the same message layout, the same answer
markup. Each module here defines ``FAMILY``, a :class:`Family` (or a subclass that overrides
:meth:`Family.convert`), with the facts its test fixture copies and their sources. Nothing outside this
package and the catalogue branches on a family: the backends read :class:`Family` fields
(``text_first``, ``keep_special``, ``chat_template``), the guards read ``follows_instructions`` and
``page_size``, :mod:`~textdrop.engine.vlm.prompts` reads ``prompts`` and ``language_hint``, and
:mod:`~textdrop.engine.vlm.postprocess` calls ``convert``.

Modules are found by name (every module of this package that defines ``FAMILY``), so adding a family is
adding a module.
"""

from __future__ import annotations

import functools
import importlib
import pkgutil
from collections.abc import Mapping
from dataclasses import dataclass, field

GENERIC = "generic"
"""The family of a model nothing is known about (a local file or a server's model of another name)."""

DEFAULT_PAGE_SIZE = 1288
"""Longest page side in pixels for a family that states none: olmOCR's 1288 px, a size Qwen-style encoders
read well (olmocr/pipeline.py, ``--target_longest_image_dim`` default)."""


@dataclass(frozen=True)
class Family:
    """How to talk to one family of models and read its answers.

    Attributes:
        key: Catalogue key, e.g. ``"granite-docling"``.
        label: Human name shown in menus and ``models list``.
        prompts: Mode (``"markdown"``, ``"text"``) → the prompt the family was trained on; ``""`` means the
            page image goes alone, without a text part.
        text_first: The text part goes before the image in the user message (olmOCR); else image first.
        keep_special: The answer is made of control tokens (DocTags, grounding tags): decode keeping them.
        chat_template: A Jinja chat template that replaces the one stored in the model's GGUF on llama.cpp,
            where the stored one renders the family's messages wrongly; ``None`` keeps the stored one.
        page_size: Longest side in pixels of the page images the family was trained on.
        follows_instructions: Free instructions (json mode, a user's prompt) make sense; OCR-only models
            were never trained to follow them.
        language_hint: The prompt may be told the page's languages (plain-instruction families only).
        hints: Lower-case substrings of a model's file, repository or server name that identify the family;
            the longest match wins (``olmocr`` beats ``qwen``).
        sources: Fact → the URL or file it was taken from.
    """

    key: str
    label: str
    prompts: Mapping[str, str]
    text_first: bool = False
    keep_special: bool = False
    chat_template: str | None = None
    page_size: int = DEFAULT_PAGE_SIZE
    follows_instructions: bool = True
    language_hint: bool = False
    hints: tuple[str, ...] = ()
    sources: Mapping[str, str] = field(default_factory=dict)

    def convert(self, answer: str) -> str:
        """The family's answer markup → Markdown, before the common tidy step.

        Args:
            answer: The raw answer with control tokens kept, end-of-turn tokens, reasoning blocks and a
                Markdown fence around the whole answer removed.

        Returns:
            Markdown. The default returns ``answer`` unchanged (families that answer in Markdown).
        """
        return answer

    def page_turn(self, answer: str) -> int:
        """How far the page must be turned before it is read again, as the family's answer says.

        Args:
            answer: The raw answer (as for :meth:`convert`).

        Returns:
            0 (read as it is: the default), or 90, 180, 270: degrees counter-clockwise (PIL's
            ``Image.Transpose.ROTATE_90`` …) added to the turn the page was read at.
        """
        return 0


@functools.cache
def all_families() -> dict[str, Family]:
    """Every family by key, in module-name order (``generic`` included)."""
    found: dict[str, Family] = {}
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda i: i.name):
        module = importlib.import_module(f"{__name__}.{info.name}")
        family = getattr(module, "FAMILY", None)
        if isinstance(family, Family):
            found[family.key] = family
    return found


def keys() -> tuple[str, ...]:
    """Every family key (``generic`` last)."""
    return tuple(sorted(all_families(), key=lambda k: (k == GENERIC, k)))


def get(key: str | Family | None) -> Family:
    """The family of ``key`` (case and surrounding spaces ignored); unknown or ``None`` → ``generic``."""
    if isinstance(key, Family):
        return key
    families = all_families()
    return families.get((key or "").strip().lower(), families[GENERIC])


def guess(name: str) -> Family:
    """The family whose hint is the longest substring of ``name`` (a file, repository or model name);
    ``generic`` when none matches."""
    lowered = name.lower().replace("_", "-")
    best, length = get(GENERIC), 0
    for family in all_families().values():
        for hint in family.hints:
            if hint in lowered and len(hint) > length:
                best, length = family, len(hint)
    return best
