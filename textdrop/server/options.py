"""The ``[server]`` table of config.toml: how ``textdrop serve`` and the tray app's HTTP API listen."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class ServerOptions(BaseModel):
    """Where the HTTP API listens, who may call it, and when it answers with a job instead of a result.

    The token itself is never stored in the file: ``token_env`` names the environment variable holding it.
    """

    model_config = ConfigDict(extra="forbid")

    enabled: bool = Field(False, description="Run the HTTP API inside the tray app.")
    host: str = Field(
        "127.0.0.1",
        description="Address to listen on. Any address that is not loopback needs a token.",
    )
    port: int = Field(8765, ge=0, le=65535, description="TCP port (0: any free port).")
    token_env: str = Field(
        "TEXTDROP_TOKEN",
        description="Environment variable holding the bearer token clients must send (none set: no token).",
    )
    cors_origins: list[str] = Field(
        default_factory=list,
        description="Web origins allowed to call the API from a browser, e.g. http://localhost:3000 "
        "(empty: none; requests carrying any other Origin are refused).",
    )
    sync_pages: int = Field(
        4,
        ge=0,
        description="Documents of at most this many pages are answered in the response; longer ones get "
        "a job id (the client's 'wait' overrides).",
    )
    max_jobs: int = Field(
        32, ge=1, description="Requests and jobs not yet finished, at most; more are answered 429."
    )
    keep_minutes: float = Field(
        10, gt=0, description="How long a finished job's result stays available, in minutes."
    )
