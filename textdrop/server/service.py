"""What the HTTP API does with a request, without HTTP: check it, queue it, follow it, answer it.

:class:`OcrService` turns the bytes of an upload and its options into a job on the shared
:class:`~textdrop.engine.jobs.JobQueue` (INTERACTIVE priority, like a capture or a drop), after a
pre-flight in a worker thread that opens the document with the configured limits: a file that is not an
image, too large, a decompression bomb or a page past the end is refused before it queues behind anything.
Long documents become :class:`ApiJob` objects that clients poll or follow; their state is changed only on
the event loop (the job worker hands every change over with ``call_soon_threadsafe``), so no lock guards it.
Nothing here logs document content: only sizes, page counts, engines and timings.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import json
import logging
import secrets
import threading
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from textdrop.engine.documents.sources import SourceLimits, open_source
from textdrop.engine.errors import ExitCode, TextdropError, UsageError
from textdrop.engine.jobs import Job, JobQueue, Priority
from textdrop.engine.models.catalog import known_ids
from textdrop.engine.registry import Mode, RecognizeOptions, split_spec
from textdrop.engine.result import OcrResult
from textdrop.server.options import ServerOptions

log = logging.getLogger(__name__)

PATH_FREE_ENGINES = ("openai",)
"""Engines whose ``model`` is a name on another server: any name is accepted. Every other engine gets only
catalogue ids, so a request can never make the server load a model from a path on its disk."""


class OcrRequest(BaseModel):
    """The options of ``POST /v1/ocr`` (form fields of a multipart upload, or keys of the JSON body).

    Lists may also be given as comma-separated text (``fields=total,date``; ``languages=ru,en``), and the
    schema as JSON text, which is how a multipart form carries them.
    """

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    mode: Mode | None = Field(None, description="markdown, text or json (default: the server's).")
    fields: list[str] | None = Field(None, description="JSON mode: the keys to extract, e.g. total,date.")
    json_schema: dict[str, Any] | None = Field(
        None, alias="schema", description="JSON mode: a JSON Schema the answer must satisfy."
    )
    prompt: str | None = Field(None, description="VLM engines: a free prompt instead of the model's own.")
    engine: str | None = Field(None, description="Engine name (rapid, llama, mlx, openai, auto).")
    model: str | None = Field(None, description="VLM engines: a catalogue id, or the openai server's model.")
    languages: list[str] | None = Field(None, description="Languages to read, e.g. ru,en.")
    pages: str | list[int] | None = Field(None, description="Pages to read, e.g. 1-3,5 (default: all).")
    box: str | list[int] | None = Field(
        None, description="Read only this region of each page: x0,y0,x1,y1 in pixels of the page image."
    )
    wait: bool | None = Field(
        None,
        description="true: answer with the result however long it takes; false: answer at once with a job "
        "id; unset: the result for short documents (server setting sync_pages), a job id for longer ones.",
    )

    @field_validator("fields", "languages", mode="before")
    @classmethod
    def _comma_list(cls, value: Any) -> Any:
        return (
            [item.strip() for item in value.split(",") if item.strip()] if isinstance(value, str) else value
        )

    @field_validator("json_schema", mode="before")
    @classmethod
    def _schema_text(cls, value: Any) -> Any:
        if isinstance(value, str):
            try:
                return json.loads(value)
            except ValueError as exc:
                raise ValueError(f"the schema is not JSON: {exc}") from None
        return value


class OcrJsonRequest(OcrRequest):
    """``POST /v1/ocr`` with a JSON body: the image or PDF as base64, and the options."""

    data: str = Field(description="The image or PDF file, base64-encoded.")


@dataclass
class Prepared:
    """A request that passed the pre-flight: ready to queue.

    Attributes:
        data: the file's bytes.
        engine: the engine spec to run it on (``None``: the queue's default).
        options: the recognition options.
        pages: how many pages will be read.
        wait: the client's ``wait`` (``None``: decided by page count).
    """

    data: bytes
    engine: str | None
    options: RecognizeOptions
    pages: int
    wait: bool | None


def error_body(exc: BaseException) -> dict[str, Any]:
    """The JSON error of a failure: ``code`` (the exit code's name), ``exit_code`` and ``message``.

    The message is the one the CLI prints for the same failure; anything that is not a
    :class:`TextdropError` is a bug and reads ``unexpected error: …``, as on the CLI.
    """
    code = exc.exit_code if isinstance(exc, TextdropError) else ExitCode.OTHER_ERROR
    message = str(exc) if isinstance(exc, TextdropError) else f"unexpected error: {exc!r}"
    return {"code": code.name.lower(), "exit_code": int(code), "message": message}


def result_body(result: OcrResult) -> dict[str, Any]:
    """A result as the API returns it: Markdown, plain text, per-page results (with the engine that
    produced each page and its lines with pixel boxes) and warnings."""
    pages = []
    warnings = result.fallback_notes()  # a page the VLM failed on is never passed off as the VLM's
    for page in result.pages:
        engine = page.engine or (page.fallback.partition(":")[0] if page.fallback else result.engine)
        pages.append(
            {
                "number": page.number,
                "engine": engine,
                "width": page.width,
                "height": page.height,
                "rotation": page.rotation,
                "markdown": page.markdown,
                "text": page.text,
                "data": page.data,
                "seconds": round(page.seconds, 3),
                "fallback": page.fallback,
                "notes": page.notes,
                "lines": [
                    {"text": line.text, "bbox": list(line.bbox), "confidence": round(line.confidence, 4)}
                    for line in page.lines
                ],
            }
        )
    return {
        "engine": result.engine,
        "model": result.model,
        "sha256": result.sha256,
        "seconds": round(result.seconds, 3),
        "markdown": result.markdown,
        "text": result.text,
        "warnings": warnings,
        "pages": pages,
    }


JobStatus = Literal["queued", "running", "done", "failed", "cancelled"]


@dataclass(eq=False)
class ApiJob:
    """A document the API answered with a job id; changed only on the event loop.

    Attributes:
        id: the job id clients use (unguessable: 128 random bits).
        job: the queue's Future.
        total: pages to read.
        done: pages read so far.
        status: queued, running, done, failed or cancelled.
        result: the result body when done; ``error`` the error body when failed.
        finished: ``time.monotonic()`` when it ended, or ``None``.
    """

    id: str
    total: int
    job: Job | None = None
    done: int = 0
    status: JobStatus = "queued"
    result: dict[str, Any] | None = None
    error: dict[str, Any] | None = None
    finished: float | None = None
    _changed: asyncio.Event = field(default_factory=asyncio.Event)

    def view(self, *, with_result: bool = True) -> dict[str, Any]:
        """The job as ``GET /v1/jobs/{id}`` returns it."""
        body: dict[str, Any] = {
            "id": self.id,
            "status": self.status,
            "pages": {"done": self.done, "total": self.total},
            "links": {"self": f"/v1/jobs/{self.id}", "events": f"/v1/jobs/{self.id}/events"},
        }
        if with_result:
            body["result"] = self.result
            body["error"] = self.error
        return body

    def update(self, *, status: JobStatus | None = None, done: int | None = None) -> None:
        """Record a change and wake whoever follows the job (event loop only)."""
        if self.finished is not None:
            return  # a late page report after a cancel changes nothing
        if done is not None:
            self.done = done
        if status is not None:
            self.status = status
        self._changed.set()
        self._changed = asyncio.Event()

    def end(self, job: Job) -> None:
        """Record how the job ended (event loop only)."""
        if self.finished is not None:
            return
        if job.cancelled():
            status: JobStatus = "cancelled"
        else:
            error = job.exception()
            if error is None:
                self.result = result_body(job.result())
                self.done = self.total
            else:
                self.error = error_body(error)
            status = "failed" if error is not None else "done"
        self.update(status=status)
        self.finished = time.monotonic()

    async def updates(self) -> AsyncIterator[dict[str, Any]]:
        """The job's view now and after every change, until it has ended (changes may be coalesced)."""
        while True:
            changed = self._changed
            ended = self.finished is not None
            yield self.view(with_result=ended)
            if ended:
                return
            await changed.wait()


class BusyError(Exception):
    """More requests and jobs are unfinished than ``max_jobs`` allows."""


class OcrService:
    """The API's state: the shared queue, the server's options, and the jobs it handed out ids for.

    Args:
        queue: a started :class:`JobQueue` (the tray's, or one ``textdrop serve`` made).
        options: the ``[server]`` settings.
        recognize: the configured recognition options requests start from.
        limits: the configured source limits (file size, pixels, pages).
    """

    def __init__(
        self, queue: JobQueue, options: ServerOptions, recognize: RecognizeOptions, limits: SourceLimits
    ) -> None:
        self.queue = queue
        self.options = options
        self.recognize = recognize
        self.limits = limits
        self.jobs: dict[str, ApiJob] = {}
        self._unfinished: set[Job] = set()
        self._lock = threading.Lock()  # guards _unfinished: done-callbacks run in the worker

    # -- pre-flight (worker threads) ---------------------------------------------------------------

    def prepare(self, data: bytes, request: OcrRequest) -> Prepared:
        """Check a request and its file; call it in a worker thread (it decodes headers and base64).

        Raises:
            UsageError: an option is invalid (a bad mode, box, pages, schema; a model path).
            EngineUnavailableError: the engine is unknown or not available here.
            InputFileError, LimitExceededError, EncryptedPdfError: what the CLI raises for that file.
        """
        options = self._options(request)
        engine = self._engine_spec(request)
        if engine is not None:
            self.queue.engine_name(engine)  # raises EngineUnavailableError now, not in the job
        with open_source(data, self.limits) as document:
            pages = len(document.select(options.pages))
        log.info("request: %d bytes, %d page(s), engine %s", len(data), pages, engine or self.queue.engine)
        return Prepared(data=data, engine=engine, options=options, pages=pages, wait=request.wait)

    def prepare_json(self, body: bytes) -> Prepared:
        """:meth:`prepare` for a JSON body (``data`` in base64); in a worker thread: parsing is slow.

        Raises:
            UsageError: the body is not JSON of the expected shape, or ``data`` is not base64.
        """
        try:
            request = OcrJsonRequest.model_validate_json(body)
        except ValidationError as exc:
            raise UsageError(validation_message(exc)) from None
        try:
            data = base64.b64decode(request.data, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise UsageError(
                f"data is not valid base64 ({exc}); encode the file's bytes as base64."
            ) from None
        return self.prepare(data, request)

    def _options(self, request: OcrRequest) -> RecognizeOptions:
        update: dict[str, Any] = {}
        for key in ("mode", "prompt", "pages", "box", "json_schema"):
            value = getattr(request, key)
            if value is not None:
                update[key] = value
        if request.fields is not None:
            update["fields"] = tuple(request.fields)
        if request.languages is not None:
            if "languages" not in RecognizeOptions.model_fields:
                raise UsageError("This textdrop reads no other languages yet; leave out languages.")
            update["languages"] = tuple(request.languages)
        if request.json_schema is not None:
            import jsonschema

            try:
                jsonschema.Draft202012Validator.check_schema(request.json_schema)
            except jsonschema.SchemaError as exc:
                raise UsageError(f"The schema is not a valid JSON Schema: {exc.message}.") from None
        if update.get("fields") or update.get("json_schema"):
            update["mode"] = "json"  # fields and a schema only make sense for extraction, as on the CLI
        base = self.recognize
        try:
            return base.model_validate({**base.model_dump(), **update})
        except ValidationError as exc:
            raise UsageError(validation_message(exc)) from None

    def _engine_spec(self, request: OcrRequest) -> str | None:
        engine, model = request.engine, request.model
        if engine is not None and ":" in engine:
            raise UsageError(f"engine is a name ({engine.partition(':')[0]!r}); give the model in model.")
        if model is None:
            return engine
        name = engine or split_spec(self.queue.engine)[0]
        if name in ("auto", "rapid"):
            raise UsageError("model needs a VLM engine: add engine llama, mlx or openai.")
        if name not in PATH_FREE_ENGINES and model not in known_ids():
            raise UsageError(
                f"{model!r} is not a catalogue model; the API loads only these: {', '.join(known_ids())} "
                "(never a path on the server)."
            )
        return f"{name}:{model}"

    # -- queue (event loop) ------------------------------------------------------------------------

    def submit(
        self,
        prepared: Prepared,
        *,
        on_page: Callable[[int, int], None] | None = None,
        on_start: Callable[[Job], None] | None = None,
    ) -> Job:
        """Queue a prepared request as an INTERACTIVE job (``on_page``, ``on_start``: see
        :meth:`JobQueue.submit`).

        Raises:
            BusyError: ``max_jobs`` requests and jobs are unfinished already.
        """
        with self._lock:
            if len(self._unfinished) >= self.options.max_jobs:
                raise BusyError(
                    f"{len(self._unfinished)} documents are waiting or being read, the limit; "
                    "try again when one has finished."
                )
            job = self.queue.submit(
                prepared.data,
                priority=Priority.INTERACTIVE,
                engine=prepared.engine,
                options=prepared.options,
                limits=self.limits,
                on_page=on_page,
                on_start=on_start,
            )
            self._unfinished.add(job)
        job.add_done_callback(self._forget)
        return job

    def _forget(self, job: Job) -> None:
        with self._lock:
            self._unfinished.discard(job)

    def wants_job(self, prepared: Prepared) -> bool:
        """Whether to answer with a job id rather than wait for the result."""
        if prepared.wait is not None:
            return not prepared.wait
        return prepared.pages > self.options.sync_pages

    def start_job(self, prepared: Prepared) -> ApiJob:
        """Queue a prepared request as a job clients follow by id (call on the event loop).

        Raises:
            BusyError: see :meth:`submit`.
        """
        self.purge()
        loop = asyncio.get_running_loop()

        def later(callback: Callable[..., None], *args: Any, **kwargs: Any) -> None:
            with contextlib.suppress(RuntimeError):  # the loop has closed: nobody follows the job now
                loop.call_soon_threadsafe(lambda: callback(*args, **kwargs))

        api_job = ApiJob(id=secrets.token_urlsafe(16), total=prepared.pages)
        api_job.job = self.submit(
            prepared,
            on_page=lambda done, _total: later(api_job.update, done=done),
            on_start=lambda _job: later(api_job.update, status="running"),
        )
        api_job.job.add_done_callback(lambda job: later(api_job.end, job))
        self.jobs[api_job.id] = api_job
        log.info("job %s: %d page(s) queued", api_job.id, prepared.pages)
        return api_job

    def purge(self) -> None:
        """Forget jobs that ended more than ``keep_minutes`` ago."""
        horizon = time.monotonic() - self.options.keep_minutes * 60
        for key in [k for k, job in self.jobs.items() if job.finished is not None and job.finished < horizon]:
            del self.jobs[key]

    def cancel_all(self) -> None:
        """Cancel every job this service queued that has not finished (the server is stopping)."""
        with self._lock:
            unfinished = list(self._unfinished)
        for job in unfinished:
            job.cancel()


def validation_message(exc: ValidationError) -> str:
    """One line naming each invalid option and why, e.g. ``box: a box is four pixel numbers …``."""
    problems = []
    for error in exc.errors():
        where = ".".join(str(part) for part in error["loc"])
        message = error["msg"].removeprefix("Value error, ")
        problems.append(f"{where}: {message}" if where else message)
    return "Invalid request: " + "; ".join(problems) + "."
