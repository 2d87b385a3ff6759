"""Recent results of the tray app, kept across restarts: ``history.jsonl`` in the data folder.

One JSON object a line, oldest first: time (UTC ISO 8601), what was read (``capture``, a file name),
engine, model, the Markdown and the plain text, and the sidecar when one was written. Appending is one
``write`` of one line; the file is rewritten (atomically) only when it holds twice :data:`KEEP` entries.
Empty results are never recorded. A damaged line is skipped with a warning.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

from textdrop.engine.result import OcrResult, PageResult

log = logging.getLogger(__name__)

KEEP = 200
"""Entries kept; the Recent results menu shows the first :data:`MENU` of them."""
MENU = 10
"""Entries in the tray's Recent results menu."""


@dataclass(frozen=True)
class Entry:
    """One remembered result.

    Attributes:
        time: when it was read, UTC ISO 8601.
        what: ``"capture"``, ``"clipboard image"``, or the dropped or watched file's name.
        engine: the engine that read it (``OcrResult.engine``).
        model: the model, or None.
        markdown: the result as Markdown.
        text: the result as plain text in reading order.
        sidecar: the sidecar written for it, or None.
    """

    time: str
    what: str
    engine: str
    model: str | None
    markdown: str
    text: str
    sidecar: str | None = None

    @classmethod
    def of(cls, result: OcrResult, what: str, sidecar: Path | None = None) -> Entry:
        """The entry for ``result`` read now."""
        text = "\n\n".join(page.text.strip() for page in result.pages if page.text.strip())
        return cls(
            datetime.now(UTC).isoformat(timespec="seconds"),
            what,
            result.engine,
            result.model,
            result.markdown.strip(),
            text,
            str(sidecar) if sidecar else None,
        )

    def result(self) -> OcrResult:
        """A one-page result with this entry's text (no boxes), to show in a result view."""
        page = PageResult(number=1, width=0, height=0, markdown=self.markdown, text=self.text)
        return OcrResult([page], self.engine, self.model, source=self.what)

    def local_time(self, fmt: str = "%H:%M") -> str:
        """:attr:`time` in the local time zone, formatted with ``fmt``."""
        return datetime.fromisoformat(self.time).astimezone().strftime(fmt)

    def matches(self, query: str) -> bool:
        """True when every word of ``query`` is in the text, the name or the engine (case-insensitive)."""
        haystack = f"{self.what} {self.engine} {self.model or ''} {self.markdown}".casefold()
        return all(word in haystack for word in query.casefold().split())


class History:
    """The remembered results, newest first; persisted to ``path``."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._entries: list[Entry] = []  # oldest first, as in the file
        self._lines = 0
        try:
            lines = path.read_text(encoding="utf-8").splitlines()
        except FileNotFoundError:
            lines = []
        except (OSError, UnicodeDecodeError) as exc:
            log.warning("cannot read the history %s: %s", path, exc)
            lines = []
        for line in lines:
            try:
                self._entries.append(Entry(**json.loads(line)))
            except (ValueError, TypeError) as exc:
                log.warning("skipping a damaged line of %s: %s", path, exc)
        self._lines = len(lines)
        self._entries = self._entries[-KEEP:]

    @property
    def entries(self) -> list[Entry]:
        """Newest first."""
        return self._entries[::-1]

    def search(self, query: str) -> list[Entry]:
        """The entries matching ``query`` (every word), newest first; all of them for an empty query."""
        return [entry for entry in self.entries if entry.matches(query)]

    def add(self, entry: Entry) -> bool:
        """Remember ``entry`` unless it is empty; False when it was not recorded (empty, or not saved)."""
        if not entry.markdown and not entry.text:
            return False
        self._entries = [*self._entries, entry][-KEEP:]
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            if self._lines + 1 >= 2 * KEEP:
                self._rewrite()
            else:
                with self.path.open("a", encoding="utf-8") as file:
                    file.write(json.dumps(asdict(entry), ensure_ascii=False) + "\n")
                self._lines += 1
        except OSError as exc:
            log.warning("cannot save the history %s: %s", self.path, exc)
            return False
        return True

    def _rewrite(self) -> None:
        handle, temp = tempfile.mkstemp(dir=self.path.parent, prefix=".history-", suffix=".tmp")
        try:
            with os.fdopen(handle, "w", encoding="utf-8") as file:
                file.writelines(json.dumps(asdict(e), ensure_ascii=False) + "\n" for e in self._entries)
            os.replace(temp, self.path)
        except BaseException:
            Path(temp).unlink(missing_ok=True)
            raise
        self._lines = len(self._entries)
