"""A watch service harness for tests: a ledger, a job queue on a test engine and the service."""

from __future__ import annotations

from pathlib import Path

from textdrop.engine.jobs import JobQueue
from textdrop.watcher.ledger import Ledger, Status
from textdrop.watcher.service import FileEvent, FolderOptions, WatchOptions, WatchService


class Harness:
    """A ledger, a job queue and a watch service, stopped at the end of the test."""

    def __init__(self, tmp_path: Path) -> None:
        self.ledger = Ledger(tmp_path / "ledger.sqlite3")
        self.events: list[FileEvent] = []
        self.service: WatchService | None = None
        self.jobs: JobQueue | None = None

    def start(
        self, *folders: FolderOptions, engine: str = "fake", observe: bool = True, **options: float
    ) -> WatchService:
        self.stop()
        self.jobs = JobQueue(engine).start()
        self.service = WatchService(
            folders,
            ledger=self.ledger,
            jobs=self.jobs,
            options=WatchOptions(**{"retry_seconds": 0.05, **options}),
            observe=observe,
            on_event=self.events.append,
        ).start()
        return self.service

    def stop(self) -> None:
        if self.service is not None:
            self.service.stop(timeout=10)
            self.service = None
        if self.jobs is not None:
            assert self.jobs.stop(grace=10, cancel_pending=True)
            self.jobs = None

    def statuses(self, name: str) -> list[str]:
        """The statuses of the events of the file called ``name``, in order."""
        return [event.status for event in self.events if event.path.name == name]

    def done(self) -> int:
        return self.ledger.counts()[Status.DONE]
