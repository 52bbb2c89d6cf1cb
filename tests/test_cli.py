"""The command line: help, version, listing, and one-line errors with exit code 2."""


import pytest
from click.testing import CliRunner

import genbench
from genbench.cli import main


def _invoke(*args):
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def test_version_and_help():
    r = _invoke("--version")
    assert r.exit_code == 0 and genbench.__version__ in r.output
    r = _invoke("run", "--help")
    assert r.exit_code == 0 and "--budget" in r.output and "--set" in r.output and "--resume" in r.output


def test_list_shows_registries():
    r = _invoke("list")
    assert r.exit_code == 0
    for word in ("smoke", "mnist-small", "seed-gan", "fashion-mnist", "train_images_per_s"):
        assert word in r.output


def test_list_is_not_cut_when_piped(monkeypatch):
    """Piped or in a file (as under CliRunner), every cell is whole: no 80-column cut, no ellipsis."""
    from genbench.metrics import metric_specs
    from genbench.registry import generator_names, get_generator

    monkeypatch.delenv("COLUMNS", raising=False)
    r = _invoke("list")
    assert r.exit_code == 0 and "…" not in r.output
    lines = r.output.splitlines()
    for key, spec in metric_specs().items():
        assert any(key in line and spec.description in line for line in lines), key
    for name in generator_names():
        cls = get_generator(name)
        doc = __import__(cls.__module__, fromlist=["_"]).__doc__.strip().splitlines()[0]
        assert any(line.startswith(f"│ {name} ") and doc in line for line in lines), name


@pytest.mark.parametrize(
    "args, message",
    [
        (["run", "--suite", "nope"], "unknown suite 'nope'; valid:"),
        (["run", "--suite", "smoke", "--models", "gan9"], "unknown generator 'gan9'; valid:"),
        (["run", "--suite", "smoke", "--budget", "epochs=3"], "--budget expects KIND=VALUE"),
        (["run", "--suite", "smoke", "--set", "seed-gan.nope=1"], "seed-gan has no setting 'nope'"),
        (["run", "--suite", "smoke", "--set", "lr=1"], "--set expects MODEL.FIELD=VALUE"),
        (["run", "--suite", "smoke", "--model", "missing.py:Foo"], "--model: no such file missing.py"),
        (["run", "--suite", "smoke", "--seeds", "a,b"], "expected comma-separated integers"),
        (["run", "--suite", "smoke", "--device", "tpu"], "'tpu' is not one of"),
        (["run", "--resume", "--overwrite"], "exclude each other"),
    ],
)
def test_bad_arguments_one_line_exit_2(args, message, tmp_path):
    r = CliRunner().invoke(main, [*args, "--out", str(tmp_path)])
    assert r.exit_code == 2, r.output
    assert message in r.output
    assert "Traceback" not in r.output


def test_missing_data_is_one_line_error(tmp_path, monkeypatch):
    from genbench.data import datasets as gdata

    monkeypatch.setattr(gdata, "_download", lambda root, ds: (_ for _ in ()).throw(OSError("offline")))
    r = CliRunner().invoke(main, ["run", "--suite", "smoke", "--data-root", str(tmp_path / "empty"),
                                  "--out", str(tmp_path)])
    assert r.exit_code == 2
    assert r.output.startswith("Error: mnist (train) not found in") and "GENBENCH_DATA" in r.output
    assert r.output.count("\n") == 1


def test_user_model_file(tmp_path):
    src = tmp_path / "mymodel.py"
    src.write_text(
        "from tests.conftest import DummyGenerator\n"
        "class Mine(DummyGenerator):\n"
        "    name = 'mine'\n"
    )
    from genbench.registry import load_generator_from_file

    cls = load_generator_from_file(f"{src}:Mine")
    assert cls.name == "mine"
    r = CliRunner().invoke(main, ["run", "--suite", "smoke", "--model", f"{src}:Nope", "--out", str(tmp_path)])
    assert r.exit_code == 2 and "has no class 'Nope'" in r.output


def test_models_selects_a_model_file_class_alone(tmp_path, data_root):
    """`--models my-gen --model my.py:MyGen` trains just that model, not the suite's baselines first."""
    src = tmp_path / "my.py"
    src.write_text(
        "from tests.conftest import DummyGenerator\n"
        "class MyGen(DummyGenerator):\n"
        "    name = 'my-gen'\n"
    )
    out = tmp_path / "out"
    r = CliRunner().invoke(main, ["run", "--suite", "smoke", "--models", "my-gen", "--model", f"{src}:MyGen",
                                  "--budget", "steps=3", "--out", str(out), "--no-progress", "--data-root", data_root])
    assert r.exit_code == 0, r.output
    assert sorted(p.name for p in (out / "smoke").iterdir() if p.is_dir()) == ["my-gen"]


def test_run_exits_1_when_a_run_failed(tmp_path, data_root):
    src = tmp_path / "broken.py"
    src.write_text(
        "from tests.conftest import DummyGenerator\n"
        "class Broken(DummyGenerator):\n"
        "    name = 'broken'\n"
        "    def train_step(self, batch, step):\n"
        "        raise RuntimeError('broken on purpose')\n"
    )
    r = CliRunner().invoke(main, ["run", "--suite", "smoke", "--models", "broken", "--model", f"{src}:Broken",
                                  "--budget", "steps=3", "--out", str(tmp_path / "out"), "--no-progress",
                                  "--data-root", data_root])
    assert r.exit_code == 1
    assert "broken seed 0: failed: RuntimeError: broken on purpose" in r.output


def test_suite_name_cannot_lead_outside_out(tmp_path, data_root):
    suite = tmp_path / "evil.toml"
    suite.write_text('name = "../../x"\nversion = 1\ndataset = "mnist"\nmodels = ["seed-gan"]\ntiny = true\n'
                     '[budget]\nsteps = 2\n')
    out = tmp_path / "a" / "b" / "out"
    r = CliRunner().invoke(main, ["run", "--suite", str(suite), "--out", str(out), "--no-progress",
                                  "--data-root", data_root])
    assert r.exit_code == 2 and "Traceback" not in r.output
    assert not (tmp_path / "a" / "x").exists() and not (tmp_path / "x").exists()


def test_batch_size_above_the_training_split_is_refused_before_training(tmp_path):
    r = CliRunner().invoke(main, ["run", "--suite", "smoke", "--models", "dcgan", "--set", "dcgan.batch_size=100000",
                                  "--out", str(tmp_path), "--no-progress"])
    assert r.exit_code == 2 and "Traceback" not in r.output
    assert "batch_size" in r.output and "60000" in r.output
    assert not any(tmp_path.iterdir())  # refused while planning: nothing trained, nothing written


def test_console_script_passes_exit_codes_and_output_through(tmp_path):
    """``genbench.cli:console`` (the installed script; here as ``python -m genbench.cli``) exits
    with the command's code and all of its output, after freezing the garbage collector."""
    import subprocess
    import sys

    def run(*args):
        return subprocess.run([sys.executable, "-m", "genbench.cli", *args], capture_output=True, text=True,
                              timeout=300, cwd=tmp_path)

    ok = run("--version")
    assert ok.returncode == 0 and ok.stdout.strip().endswith(genbench.__version__)
    bad = run("eval", "--samples", str(tmp_path / "missing"))
    assert bad.returncode == 2 and bad.stdout == ""
    assert bad.stderr.strip().splitlines() == [f"Error: {tmp_path / 'missing'}: no such file or folder"]
