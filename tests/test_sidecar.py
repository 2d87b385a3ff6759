"""Sidecar naming, rendering, metadata and atomic writing (no engine needed)."""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pydantic
import pytest
import yaml

from textdrop import __version__
from textdrop.engine.documents import sidecar
from textdrop.engine.documents.sidecar import (
    FORMATS,
    SidecarOptions,
    find_up_to_date,
    read_metadata,
    render,
    sidecar_path,
    write_sidecar,
)
from textdrop.engine.errors import ExitCode, OutputError
from textdrop.engine.result import Line, OcrResult, PageResult

SHA_A = "a" * 64
SHA_B = "b" * 64
FRONT_MATTER_KEYS = ["textdrop", "source", "sha256", "engine", "model", "pages", "created", "seconds"]


def make_result(pages: int = 1, *, source: str = "scan.jpg", sha256: str = SHA_A) -> OcrResult:
    return OcrResult(
        pages=[
            PageResult(
                number=n,
                width=800,
                height=600,
                markdown=f"# Page {n}\n\nHello wörld {n}.",
                text=f"Page {n}\nHello wörld {n}.",
                lines=[
                    Line(f"Page {n}", (10, 10, 200, 40), 0.98),
                    Line(f"Hello wörld {n}.", (10, 60, 300, 90), 0.9),
                ],
                seconds=0.5,
            )
            for n in range(1, pages + 1)
        ],
        engine="rapid",
        model="pp-ocr-v5",
        source=source,
        sha256=sha256,
        seconds=1.23456,
    )


def split_front_matter(content: str) -> tuple[dict, str]:
    assert content.startswith("---\n")
    header, body = content[4:].split("\n---\n", 1)
    return yaml.safe_load(header), body


@pytest.fixture
def source(tmp_path: Path) -> Path:
    path = tmp_path / "scan.jpg"
    path.write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    return path


def temp_files(folder: Path) -> list[Path]:
    return sorted(folder.rglob(".textdrop-*.tmp"))


# --- rendering ---------------------------------------------------------------------------------------


def test_markdown_front_matter_has_all_keys_in_order():
    before = datetime.now(UTC).replace(microsecond=0)
    content = render(make_result(), "md")
    after = datetime.now(UTC)

    meta, body = split_front_matter(content)
    assert list(meta) == FRONT_MATTER_KEYS
    assert meta["textdrop"] == __version__
    assert meta["source"] == "scan.jpg"
    assert meta["sha256"] == SHA_A
    assert meta["engine"] == "rapid"
    assert meta["model"] == "pp-ocr-v5"
    assert meta["pages"] == 1
    assert meta["seconds"] == 1.23
    assert isinstance(meta["created"], str)
    assert meta["created"].endswith("Z")
    created = datetime.fromisoformat(meta["created"])
    assert created.utcoffset() == timedelta(0)
    assert created.microsecond == 0
    assert before <= created <= after
    assert body == "\n# Page 1\n\nHello wörld 1.\n"
    assert content.endswith(".\n") and not content.endswith("\n\n")


def test_markdown_of_multi_page_document_separates_pages():
    content = render(make_result(pages=3), "md")
    meta, body = split_front_matter(content)
    assert meta["pages"] == 3
    assert "<!-- page 2 -->" in body
    assert "<!-- page 3 -->" in body
    assert body.index("# Page 1") < body.index("<!-- page 2 -->") < body.index("# Page 2")
    assert content.endswith("Hello wörld 3.\n")


def test_markdown_of_empty_result_ends_in_one_newline():
    result = make_result()
    result.pages[0].markdown = ""
    content = render(result, "md")
    assert content.endswith("---\n")
    assert split_front_matter(content)[0]["pages"] == 1


def test_markdown_keeps_long_and_odd_source_names_intact():
    name = "Scan " + "x" * 150 + " — 2024: yes.jpg"
    meta, _ = split_front_matter(render(make_result(source=name), "md"))
    assert meta["source"] == name


def test_text_is_plain_text_without_metadata():
    content = render(make_result(pages=2), "txt")
    assert content == "Page 1\nHello wörld 1.\n\fPage 2\nHello wörld 2.\n"
    assert "textdrop" not in content
    assert SHA_A not in content


def test_json_round_trips_with_boxes():
    result = make_result(pages=2)
    content = render(result, "json")
    assert content.endswith("}\n")
    assert "wörld" in content  # ensure_ascii=False
    assert content.startswith('{\n  "textdrop": {')  # indent 2, our key first
    data = json.loads(content)
    assert data["textdrop"]["version"] == __version__
    assert data["textdrop"]["created"].endswith("Z")
    datetime.fromisoformat(data["textdrop"]["created"])
    assert data["sha256"] == SHA_A
    assert data["pages"][1]["lines"][1]["bbox"] == [10, 60, 300, 90]
    assert data["pages"][0]["lines"][0]["confidence"] == 0.98
    del data["textdrop"]
    assert data == result.to_dict()


def test_unknown_format_is_rejected():
    with pytest.raises(ValueError, match="unknown sidecar format 'html'"):
        render(make_result(), "html")
    with pytest.raises(ValueError, match="unknown sidecar format"):
        sidecar_path(Path("scan.jpg"), "docx")
    assert FORMATS == ("md", "txt", "json", "pdf")


# --- naming ------------------------------------------------------------------------------------------


def test_default_names_sit_next_to_the_source(source: Path):
    assert sidecar_path(source) == source.parent / "scan.jpg.md"
    assert sidecar_path(source, "txt") == source.parent / "scan.jpg.txt"
    assert sidecar_path(source, "json") == source.parent / "scan.jpg.json"


def test_template_and_out_dir(source: Path, tmp_path: Path):
    out = tmp_path / "out" / "nested"
    assert sidecar_path(source, template="{stem}.ocr.{ext}") == source.parent / "scan.ocr.md"
    assert sidecar_path(source, "json", out_dir=out) == out / "scan.jpg.json"

    path = write_sidecar(make_result(), source, out_dir=out, template="{stem}-{ext}.{ext}")
    assert path == out / "scan-md.md"
    assert read_metadata(path)["sha256"] == SHA_A
    assert not (source.parent / "scan.jpg.md").exists()


def test_numbered_variant_goes_before_the_last_extension(source: Path):
    (source.parent / "scan.ocr.md").write_text("mine\n")
    assert sidecar_path(source, template="{stem}.ocr.{ext}") == source.parent / "scan.ocr.1.md"
    (source.parent / "scan_md").write_text("mine\n")
    assert sidecar_path(source, template="{stem}_{ext}") == source.parent / "scan_1.md"


def test_foreign_file_is_never_overwritten(source: Path):
    foreign = source.parent / "scan.jpg.md"
    foreign_bytes = b"---\ntitle: my notes\n---\n\nDo not touch.\n"
    foreign.write_bytes(foreign_bytes)
    source_bytes = source.read_bytes()

    path = write_sidecar(make_result(), source)

    assert path == source.parent / "scan.jpg.1.md"
    assert foreign.read_bytes() == foreign_bytes
    assert source.read_bytes() == source_bytes
    assert read_metadata(path)["source"] == "scan.jpg"
    assert find_up_to_date(source, SHA_A) == path


def test_second_write_replaces_own_sidecar(source: Path):
    first = write_sidecar(make_result(sha256=SHA_A), source)
    second = write_sidecar(make_result(sha256=SHA_B), source)
    assert first == second == source.parent / "scan.jpg.md"
    assert read_metadata(second)["sha256"] == SHA_B
    assert sorted(p.name for p in source.parent.iterdir()) == ["scan.jpg", "scan.jpg.md"]


def test_second_write_replaces_own_numbered_sidecar(source: Path):
    (source.parent / "scan.jpg.json").write_text('{"other": "tool"}\n')
    first = write_sidecar(make_result(), source, "json")
    second = write_sidecar(make_result(sha256=SHA_B), source, "json")
    assert first == second == source.parent / "scan.jpg.1.json"
    assert not (source.parent / "scan.jpg.2.json").exists()


def test_sidecar_of_another_source_is_not_reused(source: Path):
    other = source.parent / "other.jpg"
    other.write_bytes(b"other")
    theirs = write_sidecar(make_result(source="other.jpg"), other)
    renamed = theirs.rename(source.parent / "scan.jpg.md")
    before = renamed.read_bytes()

    path = write_sidecar(make_result(), source)

    assert path == source.parent / "scan.jpg.1.md"
    assert renamed.read_bytes() == before
    assert find_up_to_date(source, SHA_A) == path


def test_metadata_names_the_source_file_written_for(source: Path):
    path = write_sidecar(make_result(source=None), source)
    assert read_metadata(path)["source"] == "scan.jpg"
    assert write_sidecar(make_result(source=None), source) == path


def test_directory_at_target_is_skipped(source: Path):
    (source.parent / "scan.jpg.md").mkdir()
    path = write_sidecar(make_result(), source)
    assert path == source.parent / "scan.jpg.1.md"
    assert (source.parent / "scan.jpg.md").is_dir()


def test_symlink_at_target_is_skipped(source: Path, tmp_path: Path):
    link = source.parent / "scan.jpg.md"
    link.symlink_to(tmp_path / "elsewhere.md")
    path = write_sidecar(make_result(), source)
    assert path == source.parent / "scan.jpg.1.md"
    assert link.is_symlink()
    assert not (tmp_path / "elsewhere.md").exists()


def test_gives_up_after_1000_taken_names(source: Path):
    folder = source.parent
    (folder / "scan.jpg.md").write_text("foreign\n")
    for n in range(1, 1000):
        (folder / f"scan.jpg.{n}.md").write_text("foreign\n")
    with pytest.raises(OutputError, match="No free name") as caught:
        write_sidecar(make_result(), source)
    assert caught.value.exit_code == ExitCode.OUTPUT
    assert str(folder) in str(caught.value)
    assert temp_files(folder) == []


# --- txt ---------------------------------------------------------------------------------------------


def test_identical_text_sidecar_is_not_rewritten(source: Path):
    path = write_sidecar(make_result(), source, "txt")
    os.utime(path, (1_000_000, 1_000_000))
    inode = path.stat().st_ino

    again = write_sidecar(make_result(), source, "txt")

    assert again == path
    assert path.stat().st_mtime == 1_000_000
    assert path.stat().st_ino == inode


def test_different_text_file_is_foreign(source: Path):
    foreign = source.parent / "scan.jpg.txt"
    foreign.write_text("my own notes\n")
    path = write_sidecar(make_result(), source, "txt")
    assert path == source.parent / "scan.jpg.1.txt"
    assert foreign.read_text() == "my own notes\n"
    assert path.read_text(encoding="utf-8") == render(make_result(), "txt")
    content = render(make_result(), "txt")
    assert sidecar_path(source, "txt", content=content) == path
    assert sidecar_path(source, "txt") == source.parent / "scan.jpg.2.txt"  # without content: none usable
    assert find_up_to_date(source, SHA_A, "txt") is None


# --- up to date --------------------------------------------------------------------------------------


def test_find_up_to_date_follows_the_source_hash(source: Path):
    assert find_up_to_date(source, SHA_A) is None
    path = write_sidecar(make_result(sha256=SHA_A), source)
    assert find_up_to_date(source, SHA_A) == path
    assert find_up_to_date(source, SHA_B) is None
    assert find_up_to_date(source, SHA_A, "json") is None

    json_path = write_sidecar(make_result(sha256=SHA_B), source, "json")
    assert find_up_to_date(source, SHA_B, "json") == json_path
    assert find_up_to_date(source, SHA_A, "json") is None


def test_find_up_to_date_stops_at_first_missing_name(source: Path):
    write_sidecar(make_result(), source)
    numbered = source.parent / "scan.jpg.2.md"
    (source.parent / "scan.jpg.md").rename(numbered)
    assert read_metadata(numbered)["sha256"] == SHA_A
    assert find_up_to_date(source, SHA_A) is None


def test_find_up_to_date_with_out_dir_and_template(source: Path, tmp_path: Path):
    out = tmp_path / "sidecars"
    path = write_sidecar(make_result(), source, out_dir=out, template="{stem}.{ext}")
    assert path == out / "scan.md"
    assert find_up_to_date(source, SHA_A, out_dir=out, template="{stem}.{ext}") == path
    assert find_up_to_date(source, SHA_A) is None


# --- atomic write ------------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", [fmt for fmt in FORMATS if fmt != "pdf"])  # pdf: tests/test_pdfout.py
def test_successful_write_leaves_no_temp_file(source: Path, fmt: str):
    path = write_sidecar(make_result(), source, fmt)
    assert path.name == f"scan.jpg.{fmt}"
    assert temp_files(source.parent) == []


def test_failed_rename_removes_temp_file_and_keeps_old_sidecar(source: Path, monkeypatch):
    path = write_sidecar(make_result(sha256=SHA_A), source)
    before = path.read_bytes()

    def fail(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", fail)
    with pytest.raises(OutputError) as caught:
        write_sidecar(make_result(sha256=SHA_B), source)

    assert caught.value.exit_code == ExitCode.OUTPUT
    message = str(caught.value)
    assert str(source.parent) in message
    assert "No space left on device" in message
    assert "writable" in message and "free space" in message
    assert temp_files(source.parent) == []
    assert path.read_bytes() == before


def test_failed_write_of_new_sidecar_leaves_nothing(source: Path, monkeypatch):
    def fail(fd):
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(os, "fsync", fail)
    with pytest.raises(OutputError, match="Input/output error"):
        write_sidecar(make_result(), source)
    assert sorted(p.name for p in source.parent.iterdir()) == ["scan.jpg"]


def test_missing_folder_is_an_output_error(tmp_path: Path):
    missing = tmp_path / "gone" / "scan.jpg"
    with pytest.raises(OutputError, match="gone"):
        write_sidecar(make_result(), missing)


def test_out_dir_that_cannot_be_created_is_an_output_error(source: Path, tmp_path: Path):
    blocker = tmp_path / "blocker"
    blocker.write_text("a file, not a folder")
    with pytest.raises(OutputError, match="Cannot create the output folder") as caught:
        write_sidecar(make_result(), source, out_dir=blocker / "out")
    assert str(blocker / "out") in str(caught.value)
    assert blocker.read_text() == "a file, not a folder"


@pytest.mark.parametrize(("umask", "mode"), [(0o022, 0o644), (0o027, 0o640), (0o077, 0o600)])
def test_new_sidecar_mode_follows_umask(source: Path, umask: int, mode: int):
    old = os.umask(umask)
    try:
        path = write_sidecar(make_result(), source)
    finally:
        os.umask(old)
    assert path.stat().st_mode & 0o777 == mode


@pytest.mark.parametrize("platform", ["linux", "darwin"])
def test_umask_is_read_without_changing_it(monkeypatch, platform: str):
    monkeypatch.setattr(sidecar.sys, "platform", platform)
    old = os.umask(0o027)
    try:
        assert sidecar._umask() == 0o027
        assert os.umask(0o027) == 0o027
    finally:
        os.umask(old)


# --- template validation -----------------------------------------------------------------------------


def test_default_options():
    assert SidecarOptions().template == "{name}.{ext}"
    assert SidecarOptions(template="{stem}.ocr.{ext}").template == "{stem}.ocr.{ext}"
    assert "{stem}" in SidecarOptions.model_fields["template"].description


@pytest.mark.parametrize(
    ("template", "message"),
    [
        ("{name}.md", "must contain {ext}"),
        ("{name}.{{ext}}", "must contain {ext}"),
        ("out/{name}.{ext}", "without '/'"),
        ("out\\{name}.{ext}", "without '/'"),
        ("{name}.{format}", "unknown placeholder"),
        ("{0}.{ext}", "unknown placeholder"),
        ("{}.{ext}", "unknown placeholder"),
        ("{name.upper}.{ext}", "unknown placeholder"),
        ("{name[0]}.{ext}", "unknown placeholder"),
        ("{name.{ext}", "not a valid format string"),
        ("{name}}.{ext}", "not a valid format string"),
        ("{name:d}.{ext}", "cannot be formatted"),
        ("{name!z}.{ext}", "cannot be formatted"),
    ],
)
def test_invalid_templates_are_rejected(template: str, message: str):
    with pytest.raises(pydantic.ValidationError, match=message):
        SidecarOptions(template=template)
    with pytest.raises(ValueError, match=message):
        sidecar_path(Path("scan.jpg"), template=template)


def test_options_reject_unknown_keys():
    with pytest.raises(pydantic.ValidationError):
        SidecarOptions(templat="{name}.{ext}")


# --- metadata ----------------------------------------------------------------------------------------


def test_read_metadata_of_own_sidecars(source: Path):
    md = read_metadata(write_sidecar(make_result(pages=2), source))
    js = read_metadata(write_sidecar(make_result(pages=2), source, "json"))
    assert list(md) == FRONT_MATTER_KEYS
    assert list(js) == FRONT_MATTER_KEYS
    for meta in (md, js):
        assert meta["source"] == "scan.jpg"
        assert meta["sha256"] == SHA_A
        assert meta["pages"] == 2
        assert meta["textdrop"] == __version__
    assert read_metadata(write_sidecar(make_result(), source, "txt")) is None


@pytest.mark.parametrize(
    ("name", "data"),
    [
        ("plain.md", b"# Just notes\n\nNo front matter here.\n"),
        ("other.md", b"---\ntitle: Notes\nsource: scan.jpg\n---\n\nbody\n"),
        ("list.md", b"---\n- textdrop\n- source\n---\n"),
        ("scalar.md", b"---\ntextdrop\n---\n"),
        ("broken.md", b"---\ntextdrop: [unclosed\n---\n"),
        ("unterminated.md", b"---\ntextdrop: 0.1.0\nsource: scan.jpg\n"),
        ("late.md", b"\n---\ntextdrop: 0.1.0\n---\n"),
        ("binary.md", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\xff\xfe"),
        ("latin1.md", b"---\ntextdrop: 0.1.0\nsource: sc\xe4n.jpg\n---\n"),
        ("empty.md", b""),
        ("other.json", b'{"source": "scan.jpg", "sha256": "aa"}\n'),
        ("flag.json", b'{"textdrop": true, "source": "scan.jpg"}\n'),
        ("list.json", b'["textdrop"]\n'),
        ("broken.json", b'{"textdrop": {"version": "0.1.0"},'),
        ("binary.json", b'{"textdrop": {}}\xff\xfe'),
        ("notes.txt", b"---\ntextdrop: 0.1.0\nsource: scan.jpg\n---\n"),
        ("notes", b"---\ntextdrop: 0.1.0\nsource: scan.jpg\n---\n"),
    ],
)
def test_read_metadata_is_none_for_foreign_files(tmp_path: Path, name: str, data: bytes):
    path = tmp_path / name
    path.write_bytes(data)
    assert read_metadata(path) is None


def test_read_metadata_is_none_for_missing_files_and_directories(tmp_path: Path):
    assert read_metadata(tmp_path / "missing.md") is None
    (tmp_path / "folder.md").mkdir()
    assert read_metadata(tmp_path / "folder.md") is None


def test_read_metadata_does_not_block_on_a_fifo(tmp_path: Path):
    fifo = tmp_path / "pipe.md"
    os.mkfifo(fifo)
    assert read_metadata(fifo) is None


def test_read_metadata_looks_only_at_the_first_64_kib(tmp_path: Path):
    near = tmp_path / "near.md"
    near.write_text("---\ntextdrop: 0.1.0\nsource: scan.jpg\n---\n" + "é" * 100_000, encoding="utf-8")
    assert read_metadata(near) == {"textdrop": "0.1.0", "source": "scan.jpg"}

    far = tmp_path / "far.md"
    far.write_text("---\ntextdrop: 0.1.0\nnote: " + "x" * 70_000 + "\n---\n", encoding="utf-8")
    assert read_metadata(far) is None


def test_read_metadata_of_large_json_sidecar(source: Path):
    result = make_result(pages=400)
    path = write_sidecar(result, source, "json")
    assert path.stat().st_size > 64 * 1024
    assert read_metadata(path)["pages"] == 400


@pytest.mark.parametrize("fmt", ["md", "json"])
def test_a_sidecar_read_with_the_other_layout_setting_is_not_up_to_date(source: Path, fmt: str):
    result = make_result()
    result.pages[0].layout = "off"
    path = write_sidecar(result, source, fmt)
    assert find_up_to_date(source, SHA_A, fmt, layout=False) == path
    assert find_up_to_date(source, SHA_A, fmt, layout=True) is None
    assert find_up_to_date(source, SHA_A, fmt) == path  # not compared when the caller does not say
    for recorded in ("regions", "lines"):  # with the step on: through regions, or a strip by its lines
        result.pages[0].layout = recorded
        path = write_sidecar(result, source, fmt)
        assert find_up_to_date(source, SHA_A, fmt, layout=True) == path
        assert find_up_to_date(source, SHA_A, fmt, layout=False) is None


def test_a_sidecar_without_a_layout_record_passes_either_setting(source: Path):
    path = write_sidecar(make_result(), source)  # a VLM engine's pages record no layout
    assert "layout" not in read_metadata(path)
    assert find_up_to_date(source, SHA_A, layout=True) == path
    assert find_up_to_date(source, SHA_A, layout=False) == path
