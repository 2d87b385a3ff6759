"""The HTTP API as a FastAPI application: routes, authentication, limits and JSON errors.

:func:`create_app` builds the ASGI app over an :class:`~textdrop.server.service.OcrService`. The event
loop never runs OCR: pre-flight checks run in worker threads and recognition in the job queue's worker;
the loop only awaits their Futures. Every error is JSON ``{"code", "exit_code", "message"}`` with the
message the CLI prints for the same failure (see ``docs/adr/013-http-api.md`` for the status codes).
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import AsyncIterable, Callable
from contextlib import AbstractAsyncContextManager
from typing import Annotated, Any

from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse, Response
from fastapi.sse import EventSourceResponse, ServerSentEvent
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import Headers, UploadFile
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from textdrop import __version__
from textdrop.engine.errors import ExitCode, TextdropError, UsageError
from textdrop.engine.registry import engine_class, engine_names
from textdrop.server.run import is_loopback
from textdrop.server.service import (
    ApiJob,
    BusyError,
    OcrJsonRequest,
    OcrRequest,
    OcrService,
    Prepared,
    error_body,
    result_body,
    validation_message,
)

log = logging.getLogger(__name__)

_MIB = 1024 * 1024
BODY_OVERHEAD = _MIB
"""Bytes a request body may carry beyond the file itself (multipart headers, options, JSON keys)."""

STATUS: dict[ExitCode, int] = {
    ExitCode.USAGE: 422,
    ExitCode.INPUT_FILE: 422,
    ExitCode.FILE_ACCESS: 422,
    ExitCode.ENCRYPTED_PDF: 422,
    ExitCode.ENGINE_UNAVAILABLE: 422,
    ExitCode.MODEL: 422,
    ExitCode.LIMIT_EXCEEDED: 413,
    ExitCode.DOWNLOAD: 502,
}
"""HTTP status of each failure; anything not listed (a bug, a config error) is 500."""

_CODES = {401: "unauthorized", 403: "forbidden", 404: "not_found", 405: "usage"}


class ApiError(Exception):
    """An HTTP answer that is not a TextdropError: 401, 403, 404, 415, 429."""

    def __init__(self, status: int, code: str, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.headers = status, code, message, headers


class BodyTooLarge(Exception):
    """Raised while a request body is read, once it has grown past the limit."""

    def __init__(self, body: dict[str, Any]) -> None:
        super().__init__(body["message"])
        self.body = body


class BodyLimit:
    """ASGI middleware: a body over ``limit`` bytes is refused with the API's JSON 413, at once when its
    ``Content-Length`` says so, else as soon as the bytes read pass the limit (chunked uploads).

    (Starlette's RequestBodyLimitMiddleware, under FastAPI's ``max_body_size``, answers such requests with
    its own plain-text 413 whatever the app sends, so the JSON error contract needs this.)
    """

    def __init__(self, app: ASGIApp, limit: int, max_file_mb: float) -> None:
        self.app = app
        self.limit = limit
        self.body = {
            "code": ExitCode.LIMIT_EXCEEDED.name.lower(),
            "exit_code": int(ExitCode.LIMIT_EXCEEDED),
            "message": f"The request is larger than the {max_file_mb:g} MiB upload limit; "
            "raise the max_file_mb setting to read it.",
        }

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        length = Headers(scope=scope).get("content-length", "")
        if length.isdigit() and int(length) > self.limit:
            return await JSONResponse(self.body, status_code=413)(scope, receive, send)
        read = 0

        async def limited() -> Message:
            nonlocal read
            message = await receive()
            read += len(message.get("body", b""))
            if read > self.limit:
                raise BodyTooLarge(self.body)
            return message

        await self.app(scope, limited, send)


def _error(status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(body, status_code=status, headers=headers)


def failure(exc: BaseException) -> JSONResponse:
    """The JSON answer for a failed request or job."""
    code = exc.exit_code if isinstance(exc, TextdropError) else ExitCode.OTHER_ERROR
    return _error(STATUS.get(code, 500), error_body(exc))


def _ocr_openapi() -> dict[str, Any]:
    """The request body of ``POST /v1/ocr`` for the OpenAPI page: a multipart upload or base64 JSON."""
    form = OcrRequest.model_json_schema(by_alias=True)
    form["properties"] = {"file": {"type": "string", "format": "binary"}, **form["properties"]}
    form["required"] = ["file"]
    return {
        "requestBody": {
            "required": True,
            "content": {
                "multipart/form-data": {"schema": form},
                "application/json": {"schema": OcrJsonRequest.model_json_schema(by_alias=True)},
            },
        },
        "responses": {
            "200": {"description": "The result: markdown, text, warnings, pages (each with its engine)."},
            "202": {"description": "A job: follow it at links.self or links.events (server-sent events)."},
            "413": {"description": "Over a limit: upload size, pages or pixels per page."},
            "422": {"description": "Not an image or PDF, a bad option, a bad schema, an unknown engine."},
            "429": {"description": "Too many unfinished requests and jobs."},
        },
    }


def find_job(job_id: str, request: Request) -> ApiJob:
    """The job ``job_id`` of the app's service (a dependency of the job routes).

    Raises:
        ApiError: 404, no such job (never created, or expired).
    """
    service: OcrService = request.app.state.service
    service.purge()
    job = service.jobs.get(job_id)
    if job is None:
        raise ApiError(404, "not_found", f"No job {job_id}: it never existed or ended too long ago.")
    return job


JobParam = Annotated[ApiJob, Depends(find_job)]


def create_app(
    service: OcrService,
    *,
    token: str | None = None,
    lifespan: Callable[[FastAPI], AbstractAsyncContextManager[None]] | None = None,
) -> FastAPI:
    """The ASGI application.

    Args:
        service: the queue, settings and jobs the routes use.
        token: the bearer token every ``/v1`` route but health requires (``None``: none; then only
            loopback ``Host`` names are accepted, which defeats DNS rebinding).
        lifespan: FastAPI's lifespan context (the server stops its jobs and queue there).
    """
    options = service.options
    max_body = int(service.limits.max_file_mb * _MIB * 4 / 3) + BODY_OVERHEAD  # base64 is 4/3 of the file

    app = FastAPI(
        title="textdrop",
        version=__version__,
        summary="Local OCR: images and PDFs to Markdown, text and JSON, on this machine.",
        lifespan=lifespan,
    )
    app.add_middleware(BodyLimit, limit=max_body, max_file_mb=service.limits.max_file_mb)
    if options.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=options.cors_origins,
            allow_methods=["GET", "POST", "DELETE"],
            allow_headers=["Authorization", "Content-Type"],
        )

    def check_origin(request: Request) -> None:
        origin = request.headers.get("origin")
        if origin is not None and origin not in options.cors_origins:
            raise ApiError(
                403, "forbidden", f"Requests from {origin} are not allowed; add it to cors_origins."
            )

    def authorize(request: Request) -> None:
        check_origin(request)
        if token is None:
            host = (request.url.hostname or "").lower()
            if not is_loopback(host, resolve=False):
                raise ApiError(
                    403, "forbidden", f"Host {host!r} is not this machine; set a token to allow it."
                )
            return
        scheme, _, given = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not secrets.compare_digest(given.encode(), token.encode()):
            raise ApiError(
                401,
                "unauthorized",
                "Send the server's token as 'Authorization: Bearer <token>'.",
                {"WWW-Authenticate": "Bearer"},
            )

    guarded = [Depends(authorize)]
    app.state.service = service

    @app.exception_handler(ApiError)
    async def _api_error(_request: Request, exc: ApiError) -> JSONResponse:
        return _error(exc.status, {"code": exc.code, "message": exc.message}, exc.headers)

    @app.exception_handler(TextdropError)
    async def _textdrop_error(_request: Request, exc: TextdropError) -> JSONResponse:
        return failure(exc)

    @app.exception_handler(BodyTooLarge)
    async def _too_large(_request: Request, exc: BodyTooLarge) -> JSONResponse:
        return _error(413, exc.body)

    @app.exception_handler(BusyError)
    async def _busy(_request: Request, exc: BusyError) -> JSONResponse:
        return _error(429, {"code": "busy", "message": str(exc)}, {"Retry-After": "5"})

    @app.exception_handler(RequestValidationError)
    async def _invalid(_request: Request, exc: RequestValidationError) -> JSONResponse:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        return failure(UsageError(f"Invalid request: {problems}."))

    @app.exception_handler(StarletteHTTPException)
    async def _http(_request: Request, exc: HTTPException) -> JSONResponse:
        body = {"code": _CODES.get(exc.status_code, "http_error"), "message": str(exc.detail)}
        return _error(exc.status_code, body, getattr(exc, "headers", None))

    @app.get("/v1/health", tags=["service"])
    async def health(request: Request) -> JSONResponse:
        """Whether the server is up and its default engine loaded (503 when it failed to load)."""
        check_origin(request)
        loaded = service.queue.loaded
        if not loaded.done():
            state = "loading"
        elif loaded.cancelled() or loaded.exception() is not None:
            state = "failed"
        else:
            state = "ready"
        body = {
            "status": "ok" if state != "failed" else "failed",
            "version": __version__,
            "engine": service.queue.engine,
            "engine_state": state,
            "busy": service.queue.busy,
            "queued": len(service.queue),
            "jobs": len(service.jobs),
        }
        return JSONResponse(body, status_code=503 if state == "failed" else 200)

    @app.get("/v1/models", tags=["service"], dependencies=guarded)
    async def models() -> dict[str, Any]:
        """The engines (installed here or not, and how to install them) and the catalogue's models
        (which backends have them downloaded)."""
        return await run_in_threadpool(_models_report, service.queue.engine)

    @app.post(
        "/v1/ocr",
        tags=["ocr"],
        dependencies=guarded,
        openapi_extra=_ocr_openapi(),
    )
    async def ocr(request: Request) -> Response:
        """Read an image or PDF: a multipart upload in the field ``file``, or JSON with base64 ``data``.

        Short documents are answered with the result (200); longer ones, or any with ``wait=false``, with
        a job (202, ``Location`` header). A client that disconnects before its result cancels the job.
        """
        prepared = await _prepared(service, request)
        if service.wants_job(prepared):
            api_job = service.start_job(prepared)
            return JSONResponse(
                api_job.view(), status_code=202, headers={"Location": f"/v1/jobs/{api_job.id}"}
            )
        return await _answer(service, prepared, request)

    @app.get("/v1/jobs/{job_id}", tags=["jobs"], dependencies=guarded)
    async def get_job(job: JobParam) -> dict[str, Any]:
        """A job's status and progress, and its result (or error) once it has ended."""
        return job.view()

    @app.delete("/v1/jobs/{job_id}", tags=["jobs"], dependencies=guarded)
    async def cancel_job(job: JobParam) -> dict[str, Any]:
        """Cancel a job (queued: it never runs; running: it stops at the next page). Its state stays
        readable until it expires."""
        assert job.job is not None
        if job.job.cancel():
            job.end(job.job)
            log.info("job %s: cancelled by the client", job.id)
        return job.view()

    @app.get(
        "/v1/jobs/{job_id}/events", tags=["jobs"], dependencies=guarded, response_class=EventSourceResponse
    )
    async def job_events(job: JobParam) -> AsyncIterable[ServerSentEvent]:
        """Server-sent events: ``progress`` after each page (``pages.done``/``pages.total``), then one
        ``done``, ``failed`` or ``cancelled`` event carrying the job with its result or error."""
        async for view in job.updates():
            ended = "result" in view
            yield ServerSentEvent(data=view, event=view["status"] if ended else "progress")

    return app


async def _prepared(service: OcrService, request: Request) -> Prepared:
    """Parse and check the request body (multipart or JSON); the checks run in a worker thread."""
    kind = request.headers.get("content-type", "").partition(";")[0].strip().lower()
    if kind == "multipart/form-data":
        async with request.form(max_files=1, max_fields=32) as form:
            upload = form.get("file")
            if not isinstance(upload, UploadFile):
                raise UsageError("Send the image or PDF in the multipart field 'file'.")
            fields = {key: value for key, value in form.items() if key != "file"}
            data = await upload.read()
        try:
            options = OcrRequest.model_validate(fields)
        except ValidationError as exc:
            raise UsageError(validation_message(exc)) from None
        return await run_in_threadpool(service.prepare, data, options)
    if kind == "application/json":
        body = await request.body()
        return await run_in_threadpool(service.prepare_json, body)
    raise ApiError(
        415,
        "usage",
        "Send multipart/form-data with the file in the field 'file', or application/json with base64 'data'.",
    )


async def _answer(service: OcrService, prepared: Prepared, request: Request) -> Response:
    """Wait for the job's result, or for the client to go away (which cancels the job)."""
    job = service.submit(prepared)
    result = asyncio.ensure_future(asyncio.wrap_future(job))
    gone = asyncio.ensure_future(_disconnected(request))
    try:
        await asyncio.wait({result, gone}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        gone.cancel()
        if not result.done():
            result.cancel()  # cancels the job too (wrap_future chains the cancel)
    if not result.done() or result.cancelled():
        if gone.done() and not gone.cancelled():
            log.info("client went away; its job was cancelled")
        return _error(503, {"code": "cancelled", "message": "The job was cancelled; send it again."})
    if (error := result.exception()) is not None:
        return failure(error)
    return JSONResponse(result_body(result.result()))


async def _disconnected(request: Request) -> None:
    """Return when the client disconnects (the body has been read, so the next message is the end)."""
    while (await request.receive())["type"] != "http.disconnect":
        pass


def _models_report(default: str) -> dict[str, Any]:
    """What ``GET /v1/models`` answers (looks at the hub cache: run it in a worker thread)."""
    from textdrop.engine.models.catalog import CATALOG
    from textdrop.engine.models.download import is_downloaded

    engines = []
    for name in engine_names():
        cls = engine_class(name)
        available = cls.is_available()
        engines.append(
            {"name": name, "available": available, "install_hint": "" if available else cls.install_hint}
        )
    models = [
        {
            "id": entry.id,
            "title": entry.title,
            "params": entry.params,
            "licence": entry.licence,
            "backends": list(entry.backends),
            "downloaded": [backend for backend in entry.backends if is_downloaded(entry, backend)],
        }
        for entry in CATALOG
    ]
    return {"default": default, "engines": engines, "models": models}
