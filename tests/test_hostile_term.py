"""Names from files, folders and user models reach the terminal escaped: no raw newlines, ANSI codes or markup."""

from pathlib import Path

import pytest
from click.testing import CliRunner

from genbench.cli import main
from genbench.results import write_run_record
from genbench.term import plain, text
from tests.conftest import DATA_ROOT

EVIL = "m\x1b[2J\n[bold red]forged\u202e"  # no "/": it also names files and folders


@pytest.mark.parametrize("raw, shown", [
    ("dcgan", "dcgan"),
    ("a\nb", "a\\nb"),
    ("\x1b[31mred", "\\x1b[31mred"),
    ("tab\there", "tab\\there"),
    ("rtl\u202eevil", "rtl\\u202eevil"),
    ("café [red]x[/red]", "café [red]x[/red]"),  # printable text, markup included, is kept for plain output
    ("bell\x07\r", "bell\\x07\\r"),
])
def test_plain(raw, shown):
    assert plain(raw) == shown


def test_text_is_never_markup():
    from rich.console import Console

    console = Console(width=200, force_terminal=False, emoji=True)
    with console.capture() as cap:
        console.print(text("[bold]x[/bold] :warning: \x1b[2J"))
    assert cap.get() == "[bold]x[/bold] :warning: \\x1b[2J\n"


def _assert_escaped(output: str) -> None:
    assert "\x1b" not in output and "\u202e" not in output
    assert "\\x1b[2J\\n[bold red]forged\\u202e" in output.replace("\n", "")


def test_report_warning_about_a_hostile_folder_name(tmp_path):
    suite_dir = tmp_path / "syn"
    bad = suite_dir / EVIL / "seed0"
    bad.mkdir(parents=True)
    (bad / "run.json").write_text("{not json")
    r = CliRunner().invoke(main, ["report", str(suite_dir)])
    assert r.exit_code == 0
    warning = [line for line in r.output.splitlines() if line.startswith("Warning:")]
    assert len(warning) == 1 and "skipped unreadable run record" in warning[0]
    _assert_escaped(r.output)


def test_error_line_with_a_hostile_file_name(tmp_path):
    suite = tmp_path / f"{EVIL}.toml"
    suite.write_text("name = ")
    r = CliRunner().invoke(main, ["run", "--suite", str(suite), "--out", str(tmp_path / "out")])
    assert r.exit_code == 2 and r.output.count("\n") == 1 and "invalid TOML" in r.output
    _assert_escaped(r.output)


def test_check_with_a_hostile_model_name(tmp_path):
    record = {"schema_version": 1, "model": {"name": EVIL}, "seed": 0, "status": "ok",
              "suite": {"name": "syn", "version": 1}, "metrics": {"fid": 1.0}}
    write_run_record(tmp_path / "syn" / "x" / "seed0", record)
    (tmp_path / "b.json").write_text('{"schema_version": 1, "suite": "syn", "suite_version": 1, '
                                     '"models": {"m": {"metrics": {"fid": 1.0}, "status": {"ok": 1}}}}')
    r = CliRunner().invoke(main, ["check", str(tmp_path / "syn"), "--baseline", str(tmp_path / "b.json")])
    assert r.exit_code == 2 and r.output.count("\n") == 1 and "`model.name` must be a plain name" in r.output
    assert "\x1b" not in r.output and "\u202e" not in r.output


def test_run_prints_a_hostile_error_message_escaped(tmp_path):
    src = tmp_path / "boom.py"
    src.write_text(
        "from tests.conftest import DummyGenerator\n"
        "class Boom(DummyGenerator):\n"
        "    name = 'boom'\n"
        "    def train_step(self, batch, step):\n"
        f"        raise RuntimeError({EVIL!r})\n"
    )
    suite = tmp_path / "s.toml"
    suite.write_text('name = "t"\nversion = 1\ndataset = "mnist"\nmodels = ["seed-gan"]\ntiny = true\n'
                     '[budget]\nsteps = 2\n[eval]\nn_samples = 8\n')
    r = CliRunner().invoke(main, ["run", "--suite", str(suite), "--models", "boom", "--model", f"{src}:Boom",
                                  "--out", str(tmp_path / "out"),
                                  "--no-progress", "--device", "cpu", "--data-root", str(Path(DATA_ROOT).resolve())])
    assert r.exit_code == 1, r.output  # the run failed
    assert "boom seed 0: failed: RuntimeError:" in r.output
    _assert_escaped(r.output)
