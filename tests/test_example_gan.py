"""The "Your own model" example (examples/my_gan.py): one file, shown whole in the README and the docs,
run by the documented command at a tiny budget."""

from __future__ import annotations

import json
import math
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pandas as pd

from genbench.registry import load_generator_from_file

REPO = Path(__file__).resolve().parents[1]
EXAMPLE = REPO / "examples" / "my_gan.py"
SPEC = "examples/my_gan.py:MyGAN"


def test_the_documented_command_trains_and_scores_the_example(tmp_path):
    genbench = Path(sys.executable).with_name("genbench")  # the console script installed beside this Python
    command = [str(genbench), "run", "--suite", "smoke", "--models", "my-gan", "--model", SPEC,
               "--budget", "images=64", "--out", str(tmp_path), "--no-progress"]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    done = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]

    run_dir = tmp_path / "smoke" / "my-gan" / "seed0"
    record = json.loads((run_dir / "run.json").read_text())
    assert record["status"] == "ok", record.get("error")
    assert record["model"]["name"] == "my-gan"
    assert record["budget"]["achieved"]["images"] == 64
    assert record["model"]["config"]["hidden"] == 16  # tiny_config under the tiny smoke suite
    assert record["metrics"]["fid"] is not None and math.isfinite(record["metrics"]["fid"])
    log = pd.read_csv(run_dir / "train_log.csv")
    assert {"loss_d", "loss_g"} <= set(log.columns)
    assert log[["loss_d", "loss_g"]].notna().all().all()
    assert "my-gan" in (tmp_path / "smoke" / "leaderboard.md").read_text()


def test_the_readme_shows_the_example_file_whole():
    blocks = re.findall(r"```python\n(.*?)```", (REPO / "README.md").read_text(encoding="utf-8"), re.DOTALL)
    assert EXAMPLE.read_text(encoding="utf-8") in blocks, "README.md's example differs from examples/my_gan.py"


def test_the_docs_include_the_example_file():
    page = (REPO / "docs" / "your-own-model.md").read_text(encoding="utf-8")
    assert '--8<-- "examples/my_gan.py"' in page


def test_every_documented_command_for_the_example_names_its_class_and_model():
    model = load_generator_from_file(f"{EXAMPLE}:MyGAN")
    commands = []
    for path in (REPO / "README.md", REPO / "docs" / "your-own-model.md", EXAMPLE):
        text = path.read_text(encoding="utf-8").replace("\\\n", " ")
        commands += [line for line in text.splitlines() if "genbench run" in line and "my_gan.py" in line]
    assert len(commands) >= 3
    for line in commands:
        args = shlex.split(line[line.index("genbench run"):].split("#")[0])
        assert args[args.index("--model") + 1] == SPEC, line
        assert args[args.index("--models") + 1] == model.name, line
