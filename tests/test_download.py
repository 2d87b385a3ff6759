"""Model downloads through the real huggingface_hub, against a fake hub on 127.0.0.1.

huggingface_hub resolves ``HF_HOME``, ``HF_HUB_CACHE``, ``HF_ENDPOINT`` and ``HF_HUB_OFFLINE`` into
``huggingface_hub.constants`` when it is imported, before any test runs; setting the environment variables
alone would change nothing in this process. The fixtures therefore set both: the variables (for the child
processes some tests start, where they are read at import as they are for a user) and the constants
huggingface_hub derived from them (``HUGGINGFACE_CO_URL_TEMPLATE`` is built from the endpoint at import too).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import re
import shutil
import subprocess
import sys
import textwrap
from collections import namedtuple
from collections.abc import Iterator
from itertools import pairwise
from pathlib import Path
from types import SimpleNamespace

import pytest
from huggingface_hub import constants, hf_hub_download, try_to_load_from_cache
from huggingface_hub.utils._xet_progress_reporting import XetDownloadProgressReporter
from rich.console import Console

from tests.helpers.hub_server import FakeHub, serve_hub
from textdrop import cli_models
from textdrop.cli import run
from textdrop.engine.errors import DownloadError, ExitCode, ModelError
from textdrop.engine.models import catalog, download
from textdrop.engine.models.catalog import GgufFiles, MlxFiles, ModelEntry, Score

REPO_ROOT = Path(__file__).resolve().parents[1]

GGUF_REPO = "tiny-org/tiny-ocr-GGUF"
MLX_REPO = "tiny-org/tiny-ocr-mlx"
MODEL = b"GGUF" + os.urandom(200_000)
MMPROJ = b"GGUF" + os.urandom(60_000)
OTHER_QUANT = b"GGUF" + os.urandom(30_000)
WEIGHTS = os.urandom(150_000)
MLX_FILES = {
    "config.json": b'{"model_type": "qwen2_5_vl"}',
    "model.safetensors": WEIGHTS,
    "tokenizer.json": b'{"version": "1.0"}',
    "chat_template.jinja": b"{{ messages }}",
    "README.md": b"# tiny",
    "assets/sample.png": os.urandom(5_000),
}
MLX_NEEDED = {"config.json", "model.safetensors", "tokenizer.json", "chat_template.jinja"}


def tiny_entry(**changes: object) -> ModelEntry:
    """A catalog entry whose builds live on the fake hub."""
    entry = ModelEntry(
        id="tiny-ocr",
        title="Tiny OCR",
        family="qwen-vl",
        params="1M",
        licence="Apache-2.0",
        commercial_use=True,
        page_size=768,
        gguf=GgufFiles(GGUF_REPO, "tiny-ocr-Q8_0.gguf", "mmproj-tiny-ocr-f16.gguf", len(MODEL) + len(MMPROJ)),
        mlx=MlxFiles(MLX_REPO, sum(len(MLX_FILES[name]) for name in MLX_NEEDED)),
    )
    return dataclasses.replace(entry, **changes)


@pytest.fixture(autouse=True)
def hub_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Point huggingface_hub's home and cache into ``tmp_path``, online, with no token and no telemetry."""
    home = tmp_path / "hf-home"
    cache = home / "hub"
    monkeypatch.setenv("HF_HOME", str(home))
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    for name in ("HF_TOKEN", "HF_HUB_OFFLINE", "HF_ENDPOINT"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(constants, "HF_HOME", str(home))
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(cache))
    monkeypatch.setattr(constants, "HF_TOKEN_PATH", str(home / "token"))
    monkeypatch.setattr(constants, "HF_STORED_TOKENS_PATH", str(home / "stored_tokens"))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    # no user-agent agent detection: it would fetch {ENDPOINT}/api/agent-harnesses once per process
    monkeypatch.setattr(constants, "HF_HUB_DISABLE_TELEMETRY", True)
    return cache


@pytest.fixture
def hub(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeHub]:
    """The fake hub, serving the tiny GGUF repo (plus another quantisation) and the tiny MLX repo."""
    with serve_hub() as server:
        server.add_repo(
            GGUF_REPO,
            {
                "tiny-ocr-Q8_0.gguf": MODEL,
                "mmproj-tiny-ocr-f16.gguf": MMPROJ,
                "tiny-ocr-Q4_K_M.gguf": OTHER_QUANT,
                "README.md": b"# tiny",
            },
        )
        server.add_repo(MLX_REPO, MLX_FILES)
        monkeypatch.setenv("HF_ENDPOINT", server.url)
        monkeypatch.setattr(constants, "ENDPOINT", server.url)
        monkeypatch.setattr(
            constants, "HUGGINGFACE_CO_URL_TEMPLATE", server.url + "/{repo_id}/resolve/{revision}/{filename}"
        )
        # small chunks: many progress updates per file, and a dropped transfer resumes mid-file
        monkeypatch.setattr(constants, "DOWNLOAD_CHUNK_SIZE", 4096)
        yield server


@pytest.fixture
def entry(monkeypatch: pytest.MonkeyPatch) -> ModelEntry:
    """The tiny entry, as the only model in the catalog."""
    tiny = tiny_entry()
    monkeypatch.setattr(catalog, "CATALOG", (tiny,))
    return tiny


class Recorder:
    """A progress callback that keeps every call."""

    def __init__(self) -> None:
        self.calls: list[tuple[int, int]] = []

    def __call__(self, done: int, total: int) -> None:
        self.calls.append((done, total))

    def check(self, total: int) -> None:
        """Progress went from 0 to ``total`` in steps, never backwards, never beyond."""
        assert self.calls, "progress was never reported"
        assert {t for _, t in self.calls} == {total}
        dones = [d for d, _ in self.calls]
        assert dones == sorted(dones)
        assert dones[0] == 0 and dones[-1] == total
        assert dones.count(total) <= 2, "bytes were counted twice (progress reached the total early)"
        assert len({d for d in dones if 0 < d < total}) >= 10, "no byte-level progress while downloading"


# -- pulling ---------------------------------------------------------------------------------------------


def test_pull_gguf_puts_the_model_and_its_projector_in_the_hub_cache(
    hub: FakeHub, entry: ModelEntry, hub_cache: Path
):
    progress = Recorder()
    local = download.pull(entry, "llama", progress=progress)

    assert local.path.read_bytes() == MODEL
    assert local.mmproj is not None and local.mmproj.read_bytes() == MMPROJ
    snapshots = hub_cache / "models--tiny-org--tiny-ocr-GGUF" / "snapshots"
    assert local.path.parent.parent == snapshots and local.mmproj.parent == local.path.parent
    assert (local.id, local.family, local.backend, local.page_size) == ("tiny-ocr", "qwen-vl", "llama", 768)
    progress.check(len(MODEL) + len(MMPROJ))
    downloaded = {r.path.rsplit("/", 1)[-1] for r in hub.requests if r.method == "GET"}
    assert downloaded == {"tiny-ocr-Q8_0.gguf", "mmproj-tiny-ocr-f16.gguf"}  # not the other quant, not README
    assert download.is_downloaded(entry, "llama") and not download.is_downloaded(entry, "mlx")
    assert download.locate("tiny-ocr", "llama") == local


def test_pull_mlx_downloads_the_filtered_repo_folder(hub: FakeHub, entry: ModelEntry):
    progress = Recorder()
    local = download.pull(entry, "mlx", progress=progress)

    assert local.backend == "mlx" and local.mmproj is None
    on_disk = {p.relative_to(local.path).as_posix() for p in local.path.rglob("*") if p.is_file()}
    assert on_disk == MLX_NEEDED
    assert (local.path / "model.safetensors").read_bytes() == WEIGHTS
    progress.check(sum(len(MLX_FILES[name]) for name in MLX_NEEDED))
    assert any("/tree/" in r.path for r in hub.requests), "snapshot_download lists the repo tree"
    assert download.locate("tiny-ocr", "mlx") == local


def test_an_interrupted_transfer_resumes_where_it_stopped(hub: FakeHub, entry: ModelEntry):
    hub.drop_after(GGUF_REPO, "tiny-ocr-Q8_0.gguf", 50_000)
    progress = Recorder()
    local = download.pull(entry, "llama", progress=progress)

    gets = hub.gets("/tiny-ocr-Q8_0.gguf")
    assert len(gets) == 2
    assert "Range" not in gets[0].headers
    resumed_at = int(gets[1].headers["Range"].removeprefix("bytes=").removesuffix("-"))
    assert 0 < resumed_at <= 50_000
    assert local.path.read_bytes() == MODEL
    progress.check(len(MODEL) + len(MMPROJ))
    assert not list(local.path.parents[2].glob("blobs/*.incomplete"))


def test_a_server_that_ignores_range_gets_the_file_again_without_double_counting(
    hub: FakeHub, entry: ModelEntry
):
    hub.drop_after(GGUF_REPO, "tiny-ocr-Q8_0.gguf", 50_000)
    hub.ignore_range = True
    progress = Recorder()
    local = download.pull(entry, "llama", progress=progress)

    assert local.path.read_bytes() == MODEL
    assert "Range" in hub.gets("/tiny-ocr-Q8_0.gguf")[1].headers  # asked to resume, got the whole file
    total = len(MODEL) + len(MMPROJ)
    dones = [done for done, _ in progress.calls]
    assert any(later < earlier for earlier, later in pairwise(dones)), "discarded bytes are taken back"
    assert dones[-1] == total and dones.count(total) <= 2


def test_xet_downloads_report_disk_bytes_not_network_bytes():
    # huggingface_hub drives Xet progress through this reporter and the caller's tqdm_class; the fake hub
    # cannot serve Xet, so the reporter is fed as hf_xet would feed it.
    progress = Recorder()
    counter = download._ByteCounter(1_000, 0, progress)
    reporter = XetDownloadProgressReporter(
        reconstruction_desc="model.gguf: reconstructing",
        total=1_000,
        log_level=logging.INFO,
        tqdm_class=counter.bar_class(),
    )
    with reporter:
        for written, fetched in [(100, 40), (600, 300), (1_000, 450)]:
            reporter.update_progress(
                SimpleNamespace(
                    total_bytes_completed=written,
                    total_transfer_bytes_completed=fetched,
                    total_bytes_completion_rate=None,
                    total_transfer_bytes_completion_rate=None,
                    total_bytes=1_000,
                )
            )
    assert progress.calls == [(0, 1_000), (100, 1_000), (600, 1_000), (1_000, 1_000)]


def test_pull_skips_files_already_in_the_cache(hub: FakeHub, entry: ModelEntry, hub_cache: Path):
    hf_hub_download(GGUF_REPO, "tiny-ocr-Q8_0.gguf", cache_dir=hub_cache)  # as another tool would
    before = len(hub.gets("/tiny-ocr-Q8_0.gguf"))
    progress = Recorder()
    download.pull(entry, "llama", progress=progress)

    assert len(hub.gets("/tiny-ocr-Q8_0.gguf")) == before
    assert len(hub.gets("/mmproj-tiny-ocr-f16.gguf")) == 1
    assert progress.calls[0] == (len(MODEL), len(MODEL) + len(MMPROJ))  # cached bytes count as done


def test_pull_of_a_downloaded_model_makes_no_request(hub: FakeHub, entry: ModelEntry):
    first = download.pull(entry, "llama")
    count = len(hub.requests)
    assert download.pull(entry, "llama") == first
    assert len(hub.requests) == count


# -- failures --------------------------------------------------------------------------------------------


def test_offline_mode_refuses_to_download_but_locate_works_once_downloaded(
    hub: FakeHub, entry: ModelEntry, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    with pytest.raises(DownloadError, match="HF_HUB_OFFLINE") as caught:
        download.pull(entry, "llama")
    assert caught.value.exit_code == ExitCode.DOWNLOAD
    assert hub.requests == []

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    pulled = download.pull(entry, "llama")
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    count = len(hub.requests)
    assert download.locate("tiny-ocr", "llama") == pulled
    assert download.pull(entry, "llama") == pulled
    assert len(hub.requests) == count


def test_a_file_missing_on_the_hub_is_named(hub: FakeHub, monkeypatch: pytest.MonkeyPatch):
    broken = tiny_entry(gguf=GgufFiles(GGUF_REPO, "tiny-ocr-Q8_0.gguf", "mmproj-tiny-ocr-Q8_0.gguf", 260_000))
    with pytest.raises(DownloadError) as caught:
        download.pull(broken, "llama")
    assert "mmproj-tiny-ocr-Q8_0.gguf" in str(caught.value) and GGUF_REPO in str(caught.value)
    assert not [r for r in hub.requests if r.method == "GET"], "nothing is downloaded when a file is missing"


def test_an_unknown_repository_is_a_download_error(hub: FakeHub):
    missing = tiny_entry(mlx=MlxFiles("tiny-org/does-not-exist", 1_000))
    with pytest.raises(DownloadError, match="not found") as caught:
        download.pull(missing, "mlx")
    assert "tiny-org/does-not-exist" in str(caught.value)


def test_no_server_is_a_download_error_that_says_so(monkeypatch: pytest.MonkeyPatch, entry: ModelEntry):
    import huggingface_hub.utils._http as hub_http

    closed = "http://127.0.0.1:9"  # the discard port: nothing listens there
    monkeypatch.setattr(constants, "ENDPOINT", closed)
    monkeypatch.setattr(
        constants, "HUGGINGFACE_CO_URL_TEMPLATE", closed + "/{repo_id}/resolve/{revision}/{filename}"
    )
    monkeypatch.setattr(
        hub_http, "time", SimpleNamespace(sleep=lambda seconds: None)
    )  # skip the retry back-off
    with pytest.raises(DownloadError, match="Cannot reach"):
        download.pull(entry, "llama")


def test_not_enough_disk_fails_before_any_request(
    hub: FakeHub, entry: ModelEntry, monkeypatch: pytest.MonkeyPatch
):
    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(shutil, "disk_usage", lambda path: usage(10**9, 10**9 - 1_000, 1_000))
    with pytest.raises(DownloadError, match="Not enough disk space") as caught:
        download.pull(entry, "llama")
    assert "1 kB free" in str(caught.value) and "HF_HUB_CACHE" in str(caught.value)
    assert hub.requests == []


def test_an_entry_without_the_backend_cannot_be_pulled(entry: ModelEntry):
    with pytest.raises(ModelError, match="no mlx-vlm build"):
        download.pull(dataclasses.replace(entry, mlx=None), "mlx")


# -- removing --------------------------------------------------------------------------------------------


def test_remove_frees_the_bytes_and_locate_then_asks_for_a_pull(
    hub: FakeHub, entry: ModelEntry, hub_cache: Path
):
    download.pull(entry, "llama")
    freed = download.remove(entry, "llama")

    assert freed == len(MODEL) + len(MMPROJ)
    assert not (hub_cache / "models--tiny-org--tiny-ocr-GGUF").exists()
    with pytest.raises(ModelError, match="textdrop models pull tiny-ocr --backend llama"):
        download.locate("tiny-ocr", "llama")
    with pytest.raises(ModelError, match="nothing to remove"):
        download.remove(entry, "llama")


def test_remove_keeps_other_files_of_the_same_revision(hub: FakeHub, entry: ModelEntry, hub_cache: Path):
    download.pull(entry, "llama")
    hf_hub_download(GGUF_REPO, "tiny-ocr-Q4_K_M.gguf", cache_dir=hub_cache)  # another tool's quantisation

    assert download.remove(entry, "llama") == len(MODEL) + len(MMPROJ)
    kept = try_to_load_from_cache(GGUF_REPO, "tiny-ocr-Q4_K_M.gguf", cache_dir=hub_cache)
    assert isinstance(kept, str) and Path(kept).read_bytes() == OTHER_QUANT
    assert not download.is_downloaded(entry, "llama")


def test_remove_of_an_mlx_folder(hub: FakeHub, entry: ModelEntry, hub_cache: Path):
    download.pull(entry, "mlx")
    assert download.remove(entry, "mlx") == sum(len(MLX_FILES[name]) for name in MLX_NEEDED)
    assert not (hub_cache / "models--tiny-org--tiny-ocr-mlx").exists()
    assert not download.is_downloaded(entry, "mlx")


# -- locating local files --------------------------------------------------------------------------------


def _write(path: Path, data: bytes = b"GGUF") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def test_locate_a_gguf_file_finds_its_sibling_projector(tmp_path: Path):
    model = _write(tmp_path / "m" / "my-model-Q4_K_M.gguf")
    projector = _write(tmp_path / "m" / "mmproj-my-model-f16.gguf")
    local = download.locate(str(model), "llama")
    assert (local.path, local.mmproj) == (model, projector)
    assert (local.family, local.page_size, local.backend) == ("generic", download.LOCAL_PAGE_SIZE, "llama")


def test_locate_a_gguf_folder(tmp_path: Path):
    folder = tmp_path / "split"
    first = _write(folder / "big-00001-of-00002.gguf")
    _write(folder / "big-00002-of-00002.gguf")
    projector = _write(folder / "Big.mmproj-Q8_0.gguf")
    local = download.locate(str(folder), "llama")
    assert (local.path, local.mmproj) == (first, projector)


@pytest.mark.parametrize(
    ("files", "target", "message"),
    [
        (["a.gguf"], "a.gguf", "No vision projector next to a.gguf"),
        (["a.gguf", "mmproj-a.gguf"], "mmproj-a.gguf", "is a vision projector"),
        (["a.gguf", "mmproj-f16.gguf", "mmproj-q8.gguf"], "a.gguf", "Several vision projectors"),
        (["a.gguf", "b.gguf", "mmproj-a.gguf"], ".", "several GGUF models"),
        (["mmproj-a.gguf"], ".", "No language-model .gguf"),
        (["notes.txt"], "notes.txt", "not a .gguf file"),
    ],
)
def test_locate_explains_what_is_wrong_with_a_local_gguf_path(
    tmp_path: Path, files: list[str], target: str, message: str
):
    for name in files:
        _write(tmp_path / name)
    with pytest.raises(ModelError, match=message):
        download.locate(str(tmp_path / target), "llama")


def test_locate_an_mlx_folder_needs_its_config(tmp_path: Path):
    folder = tmp_path / "my-mlx-model"
    _write(folder / "model.safetensors")
    with pytest.raises(ModelError, match=r"no config\.json"):
        download.locate(str(folder), "mlx")
    _write(folder / "config.json", b"{}")
    local = download.locate(str(folder), "mlx")
    assert (local.path, local.mmproj, local.family) == (folder, None, "generic")


def test_locate_an_unknown_reference_lists_the_catalog(entry: ModelEntry):
    with pytest.raises(ModelError) as caught:
        download.locate("nothing-here", "llama")
    assert "tiny-ocr" in str(caught.value) and "path" in str(caught.value)
    with pytest.raises(ModelError, match="Unknown backend"):
        download.locate("tiny-ocr", "onnx")


def test_locate_a_catalog_model_that_is_not_downloaded(entry: ModelEntry):
    with pytest.raises(ModelError, match=r"not downloaded.*textdrop models pull tiny-ocr --backend mlx"):
        download.locate("tiny-ocr", "mlx")


# -- memory ----------------------------------------------------------------------------------------------

Memory = namedtuple("Memory", "total available")
GB = 1_000_000_000


@pytest.fixture
def machine(monkeypatch: pytest.MonkeyPatch) -> SimpleNamespace:
    """A machine with settable RAM, GPU memory and chip, for :func:`download.memory_warning`."""
    state = SimpleNamespace(total=16 * GB, available=12 * GB, vram=None, apple=False)
    monkeypatch.setattr(download.psutil, "virtual_memory", lambda: Memory(state.total, state.available))
    monkeypatch.setattr(download, "_nvidia_vram", lambda: state.vram)
    monkeypatch.setattr(download, "is_apple_silicon", lambda: state.apple)
    return state


def sized(size: int) -> ModelEntry:
    return tiny_entry(gguf=GgufFiles("o/r", "m.gguf", "mmproj.gguf", size), mlx=MlxFiles("o/r", size))


def test_memory_warning_is_silent_when_the_model_fits(machine: SimpleNamespace):
    machine.vram = 24 * GB
    assert download.memory_warning(sized(2 * GB), "llama") is None
    machine.apple = True
    assert download.memory_warning(sized(2 * GB), "mlx") is None


def test_memory_warning_for_a_model_larger_than_ram(machine: SimpleNamespace):
    machine.total = 8 * GB
    warning = download.memory_warning(sized(10 * GB), "llama")
    assert warning is not None and "more than this machine's 8.0 GB" in warning


def test_memory_warning_for_a_model_larger_than_the_gpu(machine: SimpleNamespace):
    machine.vram = 4 * GB
    warning = download.memory_warning(sized(6 * GB), "llama")
    assert warning is not None and "larger than the GPU's 4.0 GB" in warning


def test_memory_warning_without_a_gpu_mentions_the_cpu(machine: SimpleNamespace):
    warning = download.memory_warning(sized(3 * GB), "llama")
    assert warning is not None and "CPU" in warning


def test_memory_warning_for_apple_unified_memory(machine: SimpleNamespace):
    machine.apple = True
    machine.total = 16 * GB
    warning = download.memory_warning(sized(11 * GB), "mlx")
    assert warning is not None and "GPU can use" in warning and "16.0 GB" in warning


# -- the environment variables in a fresh process ----------------------------------------------------------


def _child(code: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    full = {**os.environ, **env, "PYTHONPATH": str(REPO_ROOT)}
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)], cwd=REPO_ROOT, env=full, capture_output=True, text=True
    )


CHILD_PULL = f"""
    from textdrop.engine.models import download
    from textdrop.engine.models.catalog import GgufFiles, ModelEntry
    entry = ModelEntry(
        id="tiny-ocr", title="Tiny", family="qwen-vl", params="1M", licence="MIT", commercial_use=True,
        page_size=768, mlx=None,
        gguf=GgufFiles({GGUF_REPO!r}, "tiny-ocr-Q8_0.gguf", "mmproj-tiny-ocr-f16.gguf", 300_000),
    )
    try:
        local = download.pull(entry, "llama")
    except Exception as exc:
        print(type(exc).__name__, exc)
    else:
        print(local.path)
"""


def test_hf_environment_variables_are_honoured_in_a_fresh_process(hub: FakeHub, tmp_path: Path):
    cache = tmp_path / "child-cache"
    env = {"HF_HUB_CACHE": str(cache), "HF_ENDPOINT": hub.url, "HF_HUB_DISABLE_TELEMETRY": "1"}
    result = _child(CHILD_PULL, env)
    assert result.returncode == 0, result.stderr
    path = Path(result.stdout.strip().splitlines()[-1])
    assert path.is_relative_to(cache) and path.read_bytes() == MODEL
    assert hub.gets("/tiny-ocr-Q8_0.gguf"), "the download came from HF_ENDPOINT"

    offline = _child(CHILD_PULL, {**env, "HF_HUB_CACHE": str(tmp_path / "empty"), "HF_HUB_OFFLINE": "1"})
    assert offline.stdout.startswith("DownloadError") and "offline" in offline.stdout


# -- the command line ------------------------------------------------------------------------------------


@pytest.fixture
def wide(monkeypatch: pytest.MonkeyPatch) -> None:
    """Print tables 200 columns wide (the consoles are made at import, at 80 columns when not a terminal)."""
    monkeypatch.setattr(cli_models, "out", Console(width=200, highlight=False, soft_wrap=True))
    monkeypatch.setattr(cli_models, "err", Console(width=200, stderr=True, highlight=False, soft_wrap=True))


def _table(text: str) -> dict[str, list[str]]:
    """The rows of ``models list`` by model id, split into their cells (columns are 2+ spaces apart)."""
    rows = [re.split(r"\s{2,}", line.strip()) for line in text.splitlines() if line.startswith("tiny")]
    return {cells[0]: cells for cells in rows}


def test_cli_list_shows_models_licences_defaults_and_downloads(
    hub: FakeHub, wide: None, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
):
    research = tiny_entry(
        id="tiny-research",
        licence="LicenseRef-Research",
        licence_label="Research only",
        commercial_use=False,
        gguf=GgufFiles("tiny-org/research-GGUF", "r.gguf", "mmproj-r.gguf", 2 * GB, memory_bytes=3 * GB),
        mlx=None,
        scores=(Score("olmOCR-Bench", 71.5, "a paper", "model authors"),),
        not_offered=(("mlx", "mlx-vlm has no such model type"),),
    )
    monkeypatch.setattr(catalog, "CATALOG", (tiny_entry(defaults=("llama:small",)), research))
    assert run(["models", "list"]) == ExitCode.OK
    text = capsys.readouterr().out
    rows = _table(text)
    assert rows["tiny-ocr"] == [
        "tiny-ocr",
        "llama 260 kB · mlx 150 kB",
        "llama 325 kB · mlx 188 kB",  # estimated: 1.25 × the size
        "Apache-2.0",
        "yes",
        "-",
        "-",
        "llama:small",
    ]
    assert rows["tiny-research"] == [
        "tiny-research",
        "llama 2.0 GB",
        "llama 3.0 GB",  # the published measurement
        "Research only",
        "no",
        "olmOCR-Bench 71.5",
        "-",
        "-",
    ]
    assert "tiny-research on mlx-vlm: mlx-vlm has no such model type" in text

    download.pull(catalog.CATALOG[0], "llama")
    run(["models", "list"])
    rows = _table(capsys.readouterr().out)
    assert rows["tiny-ocr"][6] == "llama" and rows["tiny-research"][6] == "-"


def test_cli_list_json_is_the_catalogue_for_scripts(
    hub: FakeHub, entry: ModelEntry, capsys: pytest.CaptureFixture[str]
):
    """``models list --json`` prints parseable JSON: ids, licences, sizes in bytes and what is downloaded."""
    assert run(["models", "list", "--json"]) == ExitCode.OK
    listed = json.loads(capsys.readouterr().out)
    (model,) = listed["models"]
    assert model["id"] == "tiny-ocr" and model["licence"] == "Apache-2.0" and model["downloaded"] == []
    assert model["builds"]["llama"] == {
        "repo": GGUF_REPO,
        "size_bytes": entry.gguf.size_bytes,
        "memory_bytes": int(entry.gguf.size_bytes * catalog.MEMORY_FACTOR),
        "memory_measured": False,
        "source": "",
    }
    assert model["scores"] == [] and model["not_offered"] == {} and model["licence_label"] == "Apache-2.0"
    download.pull(entry, "llama")
    run(["models", "list", "--json"])
    assert json.loads(capsys.readouterr().out)["models"][0]["downloaded"] == ["llama"]


def test_cli_pull_info_and_rm(
    hub: FakeHub, entry: ModelEntry, wide: None, capsys: pytest.CaptureFixture[str]
):
    assert run(["models", "info", "tiny-ocr"]) == ExitCode.OK
    info = capsys.readouterr().out
    assert GGUF_REPO in info and "mmproj-tiny-ocr-f16.gguf" in info and "not downloaded" in info

    assert run(["models", "pull", "tiny-ocr", "--backend", "llama", "--yes"]) == ExitCode.OK
    assert "ready" in capsys.readouterr().err
    local = download.locate("tiny-ocr", "llama")

    run(["models", "info", "tiny-ocr"])
    info = capsys.readouterr().out
    assert str(local.path) in info and str(local.mmproj) in info

    assert run(["models", "pull", "tiny-ocr", "--backend", "llama"]) == ExitCode.OK
    assert "already downloaded" in capsys.readouterr().err

    assert run(["models", "rm", "tiny-ocr"]) == ExitCode.OK
    assert "260 kB freed" in capsys.readouterr().err
    assert not download.is_downloaded(entry, "llama")
    assert run(["models", "rm", "tiny-ocr"]) == ExitCode.MODEL
    assert "nothing to remove" in capsys.readouterr().err


def test_cli_pull_defaults_to_mlx_on_apple_silicon(
    hub: FakeHub, entry: ModelEntry, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
):
    monkeypatch.setattr(catalog, "is_apple_silicon", lambda: True)
    assert cli_models.default_backend() == "mlx"
    assert run(["models", "pull", "tiny-ocr", "--yes"]) == ExitCode.OK
    assert download.is_downloaded(entry, "mlx") and not download.is_downloaded(entry, "llama")
    monkeypatch.setattr(catalog, "is_apple_silicon", lambda: False)
    assert cli_models.default_backend() == "llama"


def test_cli_pull_warns_about_non_commercial_licences(
    hub: FakeHub, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
):
    monkeypatch.setattr(catalog, "CATALOG", (tiny_entry(licence="Research only", commercial_use=False),))
    assert run(["models", "pull", "tiny-ocr", "-b", "llama", "-y"]) == ExitCode.OK
    assert "does not allow commercial use" in capsys.readouterr().err


def test_cli_errors_have_their_exit_codes(
    hub: FakeHub, entry: ModelEntry, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
):
    assert run(["models", "pull", "nope"]) == ExitCode.MODEL
    assert "tiny-ocr" in capsys.readouterr().err
    monkeypatch.setattr(catalog, "CATALOG", (dataclasses.replace(entry, mlx=None),))
    assert run(["models", "pull", "tiny-ocr", "--backend", "mlx"]) == ExitCode.MODEL
    assert "no mlx-vlm build" in capsys.readouterr().err
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    assert run(["models", "pull", "tiny-ocr", "--backend", "llama"]) == ExitCode.DOWNLOAD
    assert "offline" in capsys.readouterr().err


def test_doctor_prints_install_hints_literally(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
):
    """``doctor`` shows an install hint such as ``pip install 'textdrop[llama]'`` whole (rich markup would
    swallow ``[llama]``), and ``doctor --json`` carries the same hint."""
    from textdrop import doctor

    monkeypatch.setattr(doctor, "Console", lambda **kwargs: Console(width=300, **kwargs))
    hint = "pip install 'textdrop[llama]'  [bold]not markup[/bold]"
    real = doctor.report

    def report() -> dict:
        data = real()
        data["backends"][1].update(installed=False, hint=hint)
        return data

    monkeypatch.setattr(doctor, "report", report)
    assert run(["doctor"]) == ExitCode.OK
    assert hint in capsys.readouterr().out
    assert run(["doctor", "--json"]) == ExitCode.OK
    assert json.loads(capsys.readouterr().out)["backends"][1]["hint"] == hint
