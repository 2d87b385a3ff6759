"""The ``textdrop ocr`` command, in-process, with the fake engine registered through the real registry.

Most tests are one bad input in a batch together with one good PNG: the bad file must get exactly one
error line naming it and saying what is wrong (no traceback without ``-v``), the batch must exit with
the bad file's code, the good file must still get its sidecar, the bad file must be left byte for byte
as it was, and no temp file may be left behind.
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml
from PIL import Image

from tests.conftest import write_config
from tests.helpers.badfiles import (
    write_bomb_png,
    write_encrypted_pdf,
    write_no_page_pdf,
    write_pdf,
    write_text_as_image,
    write_truncated_jpeg,
)
from tests.helpers.fake_engines import CRASH_WIDTH, FakeEngine, fake_text
from textdrop.cli import run
from textdrop.engine.documents.sources import file_label as display
from textdrop.engine.errors import ExitCode

GOOD_SIZE = (40, 30)
GOOD_TEXT = fake_text(*GOOD_SIZE)
TRACEBACK = "Traceback"


@dataclass
class Outcome:
    """What one ``textdrop`` command did."""

    code: int
    out: str
    err: str

    @property
    def error_lines(self) -> list[str]:
        return [line for line in self.err.splitlines() if line.startswith("✗")]

    def lines_naming(self, path: Path) -> list[str]:
        return [line for line in self.err.splitlines() if display(path.name) in line]


Cli = Callable[..., Outcome]


@pytest.fixture
def cli(fake_engine: type[FakeEngine], capsys: pytest.CaptureFixture[str], monkeypatch) -> Cli:
    """``cli(*args)`` runs ``textdrop [-v] ocr --engine fake *args`` in-process and returns its Outcome.

    Options go before the paths; ``verbose=True`` adds ``-v``; ``engine=None`` leaves ``--engine`` out.
    """
    # rich wraps stderr lines at the console width, 80 columns when stderr is not a terminal, which splits
    # one error line over several (see test_error_line_is_not_wrapped_when_stderr_is_not_a_terminal).
    # A huge width keeps these tests about the content of the lines, and independent of the terminal.
    monkeypatch.setenv("COLUMNS", "100000")
    capsys.readouterr()

    def invoke(*args: str | Path, verbose: bool = False, engine: str | None = "fake") -> Outcome:
        # Python's real stderr never fails on a file name that is not valid UTF-8 (its error handler is
        # backslashreplace); capsys's stand-in (set up anew for the test call) is strict. stdout stays
        # strict, as it is in a UTF-8 locale other than C.UTF-8.
        sys.stderr.reconfigure(errors="backslashreplace")
        argv = ["-v"] if verbose else []
        argv += ["ocr"] + (["--engine", engine] if engine else []) + [os.fspath(arg) for arg in args]
        code = run(argv)
        captured = capsys.readouterr()
        return Outcome(code, captured.out, captured.err)

    return invoke


def write_png(path: Path, size: tuple[int, int] = GOOD_SIZE) -> Path:
    Image.new("RGB", size, "white").save(path, "PNG")
    return path


def digest(path: Path) -> str | None:
    """SHA-256 of a file, a listing of a folder, or None for what cannot be read."""
    if path.is_dir():
        return repr(sorted(os.listdir(path)))
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError:
        return None


def temp_files(folder: Path) -> list[Path]:
    return sorted(folder.rglob(".textdrop-*.tmp"))


def sidecar_text(path: Path) -> str:
    """The Markdown body of a sidecar, after its front matter."""
    content = path.read_text(encoding="utf-8")
    assert content.startswith("---\n"), content
    return content.split("\n---\n", 1)[1].strip()


def front_matter(path: Path) -> dict:
    content = path.read_text(encoding="utf-8")
    return yaml.safe_load(content[4:].split("\n---\n", 1)[0])


def assert_good_sidecar(source: Path, size: tuple[int, int] = GOOD_SIZE) -> Path:
    sidecar = source.with_name(source.name + ".md")
    assert sidecar.is_file(), f"no sidecar for {source.name}"
    assert sidecar_text(sidecar) == fake_text(*size)
    meta = front_matter(sidecar)
    assert meta["source"] == source.name
    assert meta["engine"] == "fake"
    assert meta["sha256"] == hashlib.sha256(source.read_bytes()).hexdigest()
    return sidecar


def check_bad_in_batch(
    cli: Cli,
    folder: Path,
    bad: Path,
    code: ExitCode,
    *what: str,
    options: tuple[str, ...] = (),
) -> Outcome:
    """Run ``bad`` then a good PNG in one batch and check everything the bad file must not break."""
    good = write_png(folder / "good.png")
    before = digest(bad)
    outcome = cli(*options, bad, good)

    assert outcome.code == code, outcome.err
    assert len(outcome.error_lines) == 1, outcome.err
    (line,) = outcome.error_lines
    assert outcome.lines_naming(bad) == [line], outcome.err
    for words in what:
        assert words in line, line
    assert TRACEBACK not in outcome.err + outcome.out

    assert_good_sidecar(good)
    assert f"✓ {display(good)} → {display(good)}.md" in outcome.err
    assert "1 written, 0 up to date, 1 failed." in outcome.err
    assert digest(bad) == before, "the bad file was changed"
    assert not bad.with_name(bad.name + ".md").exists()
    assert temp_files(folder) == []
    return outcome


# --- bad input: a clear error, nothing lost ------------------------------------------------------------


def test_zero_byte_file(cli: Cli, tmp_path: Path) -> None:
    bad = tmp_path / "empty.png"
    bad.touch()
    check_bad_in_batch(cli, tmp_path, bad, ExitCode.INPUT_FILE, "is empty (0 bytes)")


def test_truncated_jpeg(cli: Cli, tmp_path: Path) -> None:
    bad = write_truncated_jpeg(tmp_path / "cut.jpg")
    check_bad_in_batch(cli, tmp_path, bad, ExitCode.INPUT_FILE, "truncated or corrupt")


def test_text_file_named_png(cli: Cli, tmp_path: Path) -> None:
    bad = write_text_as_image(tmp_path / "notes.png")
    check_bad_in_batch(cli, tmp_path, bad, ExitCode.INPUT_FILE, "not an image or PDF")


def test_decompression_bomb_png(cli: Cli, tmp_path: Path) -> None:
    bad = write_bomb_png(tmp_path / "bomb.png", 40_000, 40_000)
    check_bad_in_batch(cli, tmp_path, bad, ExitCode.LIMIT_EXCEEDED, "pixel limit")
    assert FakeEngine.pages == [GOOD_SIZE], "the bomb must be refused before it reaches the engine"


def test_encrypted_pdf(cli: Cli, tmp_path: Path) -> None:
    bad = write_encrypted_pdf(tmp_path / "locked.pdf")
    check_bad_in_batch(cli, tmp_path, bad, ExitCode.ENCRYPTED_PDF, "password-protected")


def test_pdf_without_pages(cli: Cli, tmp_path: Path) -> None:
    bad = write_no_page_pdf(tmp_path / "hollow.pdf")
    check_bad_in_batch(cli, tmp_path, bad, ExitCode.INPUT_FILE, "no pages")


def test_pdf_over_the_configured_page_limit(cli: Cli, tmp_path: Path, textdrop_home: Path) -> None:
    write_config(textdrop_home, "[sources]\nmax_pages = 2\n")
    bad = write_pdf(tmp_path / "long.pdf", 3)
    check_bad_in_batch(cli, tmp_path, bad, ExitCode.LIMIT_EXCEEDED, "3 pages", "2-page limit")
    assert FakeEngine.pages == [GOOD_SIZE], "no page of the long PDF may be recognised"


def test_pdf_within_the_configured_page_limit_is_read(cli: Cli, tmp_path: Path, textdrop_home: Path) -> None:
    write_config(textdrop_home, "[sources]\nmax_pages = 2\npdf_dpi = 72\n")
    pdf = write_pdf(tmp_path / "short.pdf", 2)
    outcome = cli(pdf)
    assert outcome.code == ExitCode.OK, outcome.err
    assert FakeEngine.pages == [(612, 792), (612, 792)]  # US Letter at 72 dpi
    body = sidecar_text(tmp_path / "short.pdf.md")
    assert body.endswith("fake page 612x792\n\n<!-- page 2 -->\n\nfake page 612x792")
    assert front_matter(tmp_path / "short.pdf.md")["pages"] == 2


def test_page_marker_only_between_pdf_pages(cli: Cli, tmp_path: Path) -> None:
    pdf = write_pdf(tmp_path / "short.pdf", 2)
    assert cli("--dpi", "72", pdf).code == ExitCode.OK
    body = sidecar_text(tmp_path / "short.pdf.md")
    assert body == "fake page 612x792\n\n<!-- page 2 -->\n\nfake page 612x792"


def test_unreadable_file(cli: Cli, tmp_path: Path) -> None:
    bad = write_png(tmp_path / "secret.png", (50, 50))
    before = digest(bad)
    bad.chmod(0)
    try:
        if os.access(bad, os.R_OK):
            pytest.skip("this user (root?) can read a file with mode 000")
        check_bad_in_batch(cli, tmp_path, bad, ExitCode.FILE_ACCESS, "ermission denied")
        assert stat.S_IMODE(bad.stat().st_mode) == 0, "the file's mode must be left as it was"
    finally:
        bad.chmod(stat.S_IRUSR | stat.S_IWUSR)
    assert digest(bad) == before


def test_folder_named_like_an_image_passed_explicitly(cli: Cli, tmp_path: Path) -> None:
    bad = tmp_path / "x.png"
    bad.mkdir()
    check_bad_in_batch(cli, tmp_path, bad, ExitCode.FILE_ACCESS)


def test_missing_path(cli: Cli, tmp_path: Path) -> None:
    bad = tmp_path / "nowhere.png"
    check_bad_in_batch(cli, tmp_path, bad, ExitCode.FILE_ACCESS, "no such file or folder")
    assert not bad.exists()


def test_pattern_matching_nothing(cli: Cli, tmp_path: Path) -> None:
    good = write_png(tmp_path / "good.png")
    outcome = cli(tmp_path / "*.tiff", good)
    assert outcome.code == ExitCode.FILE_ACCESS
    (line,) = outcome.error_lines
    assert "*.tiff" in line and "no file matches" in line
    assert_good_sidecar(good)


def test_batch_exits_with_the_code_of_the_first_failed_file(cli: Cli, tmp_path: Path) -> None:
    empty = tmp_path / "empty.png"
    empty.touch()
    locked = write_encrypted_pdf(tmp_path / "locked.pdf")
    good = write_png(tmp_path / "good.png")

    first = cli(locked, good, empty)
    assert first.code == ExitCode.ENCRYPTED_PDF
    assert len(first.error_lines) == 2
    assert "1 written, 0 up to date, 2 failed." in first.err

    second = cli(empty, good, locked)
    assert second.code == ExitCode.INPUT_FILE
    assert "0 written, 1 up to date, 2 failed." in second.err


# --- folders, links and names ------------------------------------------------------------------------


def test_symlink_loop_under_recursive_terminates_and_reads_each_image_once(cli: Cli, tmp_path: Path) -> None:
    folder = tmp_path / "scans"
    folder.mkdir()
    good = write_png(folder / "good.png")
    (folder / "loop").symlink_to(".", target_is_directory=True)
    (folder / "sub").mkdir()
    deep = write_png(folder / "sub" / "deep.png", (41, 31))
    (folder / "sub" / "up").symlink_to("..", target_is_directory=True)

    outcome = cli("--recursive", folder)

    assert outcome.code == ExitCode.OK, outcome.err
    assert sorted(FakeEngine.pages) == [GOOD_SIZE, (41, 31)]
    assert_good_sidecar(good)
    assert_good_sidecar(deep, (41, 31))
    assert "2 written, 0 up to date, 0 failed." in outcome.err
    assert temp_files(tmp_path) == []


def test_symlink_loop_under_recursive_glob_reads_each_image_once(cli: Cli, tmp_path: Path) -> None:
    folder = tmp_path / "scans"
    folder.mkdir()
    write_png(folder / "good.png")
    (folder / "loop").symlink_to(".", target_is_directory=True)

    outcome = cli("--recursive", "--force", f"{folder}/**/*.png")

    assert outcome.code == ExitCode.OK, outcome.err
    assert FakeEngine.pages == [GOOD_SIZE]


def test_folder_without_recursive_skips_sub_folders_and_other_files(cli: Cli, tmp_path: Path) -> None:
    write_png(tmp_path / "a.png")
    (tmp_path / "notes.txt").write_text("not a scan")
    (tmp_path / "sub").mkdir()
    write_png(tmp_path / "sub" / "b.png", (41, 31))

    outcome = cli(tmp_path)

    assert outcome.code == ExitCode.OK, outcome.err
    assert FakeEngine.pages == [GOOD_SIZE]
    assert not (tmp_path / "sub" / "b.png.md").exists()
    assert not (tmp_path / "notes.txt.md").exists()


def test_non_utf8_file_name(cli: Cli, tmp_path: Path) -> None:
    name = os.fsdecode(b"scan-\xff.png")
    try:
        source = write_png(tmp_path / name, (41, 31))
    except (OSError, UnicodeEncodeError):
        pytest.skip("this file system refuses file names that are not valid UTF-8")
    good = write_png(tmp_path / "good.png")

    outcome = cli(source, good)

    assert outcome.code == ExitCode.OK, outcome.err
    assert outcome.error_lines == []
    sidecar = tmp_path / os.fsdecode(b"scan-\xff.png.md")
    assert sidecar_text(sidecar) == fake_text(41, 31)
    assert front_matter(sidecar)["source"] == "scan-\\xff.png"
    assert_good_sidecar(good)
    assert f"✓ {tmp_path}/scan-\\xff.png → {tmp_path}/scan-\\xff.png.md" in outcome.err
    # the sidecar's metadata names the file, so the next run finds it up to date
    again = cli(source)
    assert again.code == ExitCode.OK
    assert "scan-\\xff.png: up to date" in again.err


@pytest.mark.parametrize("to_stdout", [False, True], ids=["sidecar", "stdout"])
def test_non_utf8_file_name_json(cli: Cli, tmp_path: Path, to_stdout: bool) -> None:
    try:
        source = write_png(tmp_path / os.fsdecode(b"scan-\xff.png"), (41, 31))
    except (OSError, UnicodeEncodeError):
        pytest.skip("this file system refuses file names that are not valid UTF-8")
    outcome = cli("--format", "json", *(["--stdout"] if to_stdout else []), source)
    assert outcome.code == ExitCode.OK, outcome.err
    if to_stdout:
        data = json.loads(outcome.out)
    else:
        data = json.loads((tmp_path / os.fsdecode(b"scan-\xff.png.json")).read_text(encoding="utf-8"))
    assert data["pages"][0]["text"] == fake_text(41, 31)


def test_foreign_markdown_file_is_never_overwritten(cli: Cli, tmp_path: Path) -> None:
    source = tmp_path / "scan.jpg"
    Image.new("RGB", (42, 32), "white").save(source, "JPEG")
    foreign = tmp_path / "scan.jpg.md"
    foreign.write_text("# My own notes about scan.jpg\n\nDo not touch.\n", encoding="utf-8")
    before = digest(foreign)

    outcome = cli(source)

    assert outcome.code == ExitCode.OK, outcome.err
    assert digest(foreign) == before
    numbered = tmp_path / "scan.jpg.1.md"
    assert sidecar_text(numbered) == fake_text(42, 32)
    assert f"→ {numbered}" in outcome.err
    assert temp_files(tmp_path) == []
    # and the numbered sidecar is what the next run finds up to date
    again = cli(source)
    assert "up to date (" in again.err and "scan.jpg.1.md" in again.err
    assert digest(foreign) == before
    assert not (tmp_path / "scan.jpg.2.md").exists()


# --- normal operation --------------------------------------------------------------------------------


def test_up_to_date_sidecar_is_skipped_and_force_rewrites_it(cli: Cli, tmp_path: Path) -> None:
    good = write_png(tmp_path / "good.png")
    first = cli(good)
    assert first.code == ExitCode.OK, first.err
    sidecar = assert_good_sidecar(good)
    old = sidecar.stat()
    assert FakeEngine.pages == [GOOD_SIZE]

    second = cli(good)
    assert second.code == ExitCode.OK
    assert f"= {good}: up to date ({sidecar})" in second.err
    assert sidecar.stat().st_mtime_ns == old.st_mtime_ns
    assert sidecar.stat().st_ino == old.st_ino
    assert FakeEngine.pages == [GOOD_SIZE], "an up-to-date file must not be recognised again"

    forced = cli("--force", good)
    assert forced.code == ExitCode.OK
    assert "✓" in forced.err
    assert FakeEngine.pages == [GOOD_SIZE, GOOD_SIZE]
    assert sidecar.stat().st_ino != old.st_ino, "--force must write a new sidecar"
    assert_good_sidecar(good)
    assert not (tmp_path / "good.png.1.md").exists()


def test_changed_source_is_recognised_again(cli: Cli, tmp_path: Path) -> None:
    good = write_png(tmp_path / "good.png")
    cli(good)
    write_png(good, (43, 33))
    outcome = cli(good)
    assert "up to date" not in outcome.err
    assert_good_sidecar(good, (43, 33))
    assert not (tmp_path / "good.png.1.md").exists()


def test_out_dir(cli: Cli, tmp_path: Path) -> None:
    good = write_png(tmp_path / "good.png")
    out = tmp_path / "out" / "deeper"
    outcome = cli("--out-dir", out, good)
    assert outcome.code == ExitCode.OK, outcome.err
    assert sidecar_text(out / "good.png.md") == GOOD_TEXT
    assert not (tmp_path / "good.png.md").exists()
    assert f"→ {out / 'good.png.md'}" in outcome.err
    assert "up to date" in cli("--out-dir", out, good).err


def test_stdout_prints_and_writes_no_sidecar(cli: Cli, tmp_path: Path) -> None:
    good = write_png(tmp_path / "good.png")
    outcome = cli("--stdout", good)
    assert outcome.code == ExitCode.OK, outcome.err
    assert outcome.out == GOOD_TEXT
    assert sorted(os.listdir(tmp_path)) == ["good.png"]
    assert "✓" not in outcome.err


def test_stdout_in_a_batch_prints_every_file(cli: Cli, tmp_path: Path) -> None:
    a = write_png(tmp_path / "a.png")
    b = write_png(tmp_path / "b.png", (41, 31))
    outcome = cli("--stdout", "--format", "txt", a, b)
    assert outcome.out == f"{GOOD_TEXT}\n{fake_text(41, 31)}\n"
    assert "2 printed, 0 up to date, 0 failed." in outcome.err
    assert sorted(os.listdir(tmp_path)) == ["a.png", "b.png"]


def test_format_json(cli: Cli, tmp_path: Path) -> None:
    good = write_png(tmp_path / "good.png")
    outcome = cli("--format", "json", good)
    assert outcome.code == ExitCode.OK, outcome.err
    data = json.loads((tmp_path / "good.png.json").read_text(encoding="utf-8"))
    assert data["textdrop"]["version"]
    assert data["source"] == "good.png"
    assert data["engine"] == "fake"
    assert data["sha256"] == hashlib.sha256(good.read_bytes()).hexdigest()
    (page,) = data["pages"]
    assert (page["width"], page["height"], page["text"]) == (*GOOD_SIZE, GOOD_TEXT)
    assert page["lines"][0]["bbox"] == [0, 0, *GOOD_SIZE]
    assert not (tmp_path / "good.png.md").exists()
    assert "up to date" in cli("--format", "json", good).err


def test_format_json_to_stdout(cli: Cli, tmp_path: Path) -> None:
    good = write_png(tmp_path / "good.png")
    outcome = cli("--stdout", "--format", "json", good)
    data = json.loads(outcome.out)
    assert data["pages"][0]["markdown"] == GOOD_TEXT
    assert sorted(os.listdir(tmp_path)) == ["good.png"]


def test_format_txt(cli: Cli, tmp_path: Path) -> None:
    good = write_png(tmp_path / "good.png")
    outcome = cli("--format", "txt", good)
    assert outcome.code == ExitCode.OK, outcome.err
    assert (tmp_path / "good.png.txt").read_text(encoding="utf-8") == GOOD_TEXT + "\n"
    assert not (tmp_path / "good.png.md").exists()


def test_dpi_option_sets_pdf_resolution(cli: Cli, tmp_path: Path) -> None:
    pdf = write_pdf(tmp_path / "one.pdf", 1)
    cli("--dpi", "144", pdf)
    assert FakeEngine.pages == [(1224, 1584)]


@pytest.mark.parametrize("verbose", [False, True], ids=["quiet", "verbose"])
def test_unexpected_engine_error_is_reported_and_the_batch_continues(
    cli: Cli, tmp_path: Path, verbose: bool
) -> None:
    crash = write_png(tmp_path / "crash.png", (CRASH_WIDTH, 20))
    good = write_png(tmp_path / "good.png")

    outcome = cli(crash, good, verbose=verbose)

    assert outcome.code == ExitCode.OTHER_ERROR
    (line,) = outcome.error_lines
    assert str(crash) in line and "unexpected error" in line and "RuntimeError" in line
    assert (TRACEBACK in outcome.err) is verbose
    if verbose:
        assert "fake_engines.py" in outcome.err  # the traceback reaches into the engine
    assert_good_sidecar(good)
    assert not (tmp_path / "crash.png.md").exists()
    assert temp_files(tmp_path) == []
    assert FakeEngine.loads == 1 and FakeEngine.closes == 1, "one engine for the whole batch, closed"


def test_unknown_engine(cli: Cli, tmp_path: Path) -> None:
    good = write_png(tmp_path / "good.png")
    outcome = cli(good, engine="no-such-engine")
    assert outcome.code == ExitCode.ENGINE_UNAVAILABLE
    (line,) = outcome.error_lines
    assert "no-such-engine" in line and "Unknown engine" in line and "fake" in line
    assert TRACEBACK not in outcome.err
    assert sorted(os.listdir(tmp_path)) == ["good.png"]


def test_engine_from_config_file(cli: Cli, tmp_path: Path, textdrop_home: Path) -> None:
    write_config(textdrop_home, 'engine = "fake"\n')
    good = write_png(tmp_path / "good.png")
    outcome = cli(good, engine=None)
    assert outcome.code == ExitCode.OK, outcome.err
    assert_good_sidecar(good)


def test_invalid_config_file(cli: Cli, tmp_path: Path, textdrop_home: Path) -> None:
    config = write_config(textdrop_home, "[sources]\nmax_pages = 0\n")
    good = write_png(tmp_path / "good.png")
    outcome = cli(good)
    assert outcome.code == ExitCode.INVALID_CONFIG
    (line,) = outcome.error_lines
    assert str(config) in line and "max_pages" in line
    assert sorted(os.listdir(tmp_path)) == ["good.png"]


def test_no_command_without_a_display_prints_help(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    assert run([]) == ExitCode.USAGE
    assert "usage: textdrop" in capsys.readouterr().out


def test_no_command_on_a_display_starts_the_tray(monkeypatch: pytest.MonkeyPatch) -> None:
    import textdrop.desktop.app

    started: list[bool] = []
    monkeypatch.setenv("DISPLAY", ":0")
    monkeypatch.setattr(textdrop.desktop.app, "run_tray", lambda watch: started.append(watch) or ExitCode.OK)
    assert run([]) == ExitCode.OK and started == [True]


def test_error_line_is_not_wrapped_when_stderr_is_not_a_terminal(
    fake_engine: type[FakeEngine], capsys: pytest.CaptureFixture[str], monkeypatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("COLUMNS", "80")
    missing = tmp_path / ("a-long-folder-name-for-a-long-path-" * 3) / "scan_0001.png"
    assert run(["ocr", "--engine", "fake", str(missing)]) == ExitCode.FILE_ACCESS
    lines = capsys.readouterr().err.splitlines()
    assert lines[0] == f"✗ {missing}: no such file or folder."


def test_tray_without_qt_says_how_to_install_it(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "textdrop.desktop.app", None)  # as if PySide6 were missing
    assert run(["tray"]) == ExitCode.USAGE
    assert "pip install 'textdrop[desktop]'" in capsys.readouterr().err
