"""The docs' complete flow example (examples/realnvp_flow.py) through the documented command, and the
likelihood mistakes a flow author makes, each failing or marked with the message that names the fix.

The mistakes are written the way a user brings them: a file beside the example that imports it.
"""

from __future__ import annotations

import json
import math
import shutil
import sys
import textwrap
import uuid
from pathlib import Path

import pandas as pd
import pytest
import torch
from click.testing import CliRunner

import genbench
from genbench.cli import main
from genbench.errors import ConfigError
from genbench.sample_contract import FLOW_FIX, SampleContractError, precheck_sampling

REPO = Path(__file__).resolve().parents[1]
EXAMPLE = REPO / "examples" / "realnvp_flow.py"
NEGATIVE_NLL_FIX = ("a negative NLL, which 8-bit images cannot have: a density of pixels in [0, 1] must subtract "
                    "784·ln 256 = 4347.4 nats per image to be a likelihood of their 8-bit values, and set "
                    "likelihood_is_bound = True under uniform dequantization")

MISTAKES = '''
import torch

from realnvp_flow import LEVELS, PIXELS, RealNVP


class ContinuousFlow(RealNVP):
    """The natural first version: the density of dequantized pixels in [0, 1], returned as the likelihood."""

    name = "flow-continuous"
    likelihood_is_bound = False

    def log_likelihood(self, x, generator=None):
        u = torch.rand(x.shape, generator=generator, device=x.device)
        return self._log_density((x.float() + u) / LEVELS)


class ScalarFlow(RealNVP):
    name = "flow-scalar"

    def log_likelihood(self, x, generator=None):
        return super().log_likelihood(x, generator).mean()


class PerDimensionFlow(RealNVP):
    name = "flow-per-dim"

    def log_likelihood(self, x, generator=None):
        return super().log_likelihood(x, generator) / PIXELS


class RealNVPRenamed(RealNVP):
    """Another class under the example's name: not the code a run of RealNVP trained."""

    name = "realnvp"


class UnclampedFlow(RealNVP):
    name = "flow-unclamped"

    @torch.no_grad()
    def sample(self, n, generator):
        z = torch.randn(n, 1, 28, 28, generator=generator, device=self.device)
        for layer in reversed(self.layers):
            z = layer.inverse(z)
        a = self.config.alpha
        return (torch.sigmoid(z) - a) / (1 - a * 2)
'''


def _run(out: Path, data_root: str, models: str, spec: str, budget: str):
    return CliRunner().invoke(main, [
        "run", "--suite", "smoke", "--models", models, "--model", spec, "--budget", budget, "--out", str(out),
        "--no-progress", "--data-root", data_root, "--device", "cpu"])


def _record(out: Path, model: str) -> dict:
    return json.loads((out / "smoke" / model / "seed0" / "run.json").read_text())


@pytest.fixture(scope="module")
def plugins(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("plugins")
    shutil.copy(EXAMPLE, folder / "realnvp_flow.py")
    (folder / "flow_mistakes.py").write_text(textwrap.dedent(MISTAKES))
    return folder


@pytest.fixture(scope="module")
def example_run(tmp_path_factory, data_root) -> Path:
    """The documented command at a tiny budget: `genbench run --suite smoke --models realnvp --model ...`."""
    out = tmp_path_factory.mktemp("out")
    r = _run(out, data_root, "realnvp", f"{EXAMPLE}:RealNVP", "images=64")
    assert r.exit_code == 0, r.output
    return out


def test_a_model_file_imports_the_modules_beside_it(tmp_path):
    from genbench.registry import load_generator_from_file

    sibling = f"layers_{uuid.uuid4().hex}"  # a module name nothing imported before
    (tmp_path / f"{sibling}.py").write_text("WIDTH = 7\n")
    (tmp_path / "model.py").write_text(f"from {sibling} import WIDTH\nfrom realnvp_flow import RealNVP\n\n\n"
                                       f"class Wide(RealNVP):\n    name = 'wide'\n    width = WIDTH\n")
    shutil.copy(EXAMPLE, tmp_path / "realnvp_flow.py")
    cls = load_generator_from_file(f"{tmp_path / 'model.py'}:Wide")
    assert cls.width == 7 and str(tmp_path.resolve()) in sys.path


def test_the_flow_example_runs_ok_with_a_marked_bound(example_run):
    rec = _record(example_run, "realnvp")
    assert rec["status"] == "ok" and rec["error"] is None
    assert rec["metrics"]["nll_bpd"] > 0 and rec["metrics"]["nll_is_bound"] is True
    assert rec["budget"]["achieved"]["images"] == 64
    assert rec["timings"]["likelihood_check_seconds"] >= 0  # the door checked its likelihood
    md = (example_run / "smoke" / "leaderboard.md").read_text()
    row = next(line for line in md.splitlines() if line.startswith("| realnvp |"))
    assert " (bound" in row
    assert json.loads((example_run / "smoke" / "leaderboard.json").read_text())["rows"][0]["nll_is_bound"] is True


def test_a_plugins_tiny_config_is_honoured_under_a_tiny_suite(example_run):
    from examples.realnvp_flow import RealNVP

    tiny = RealNVP(genbench.config.make_config(RealNVP, RealNVP.tiny_config))
    full = RealNVP(RealNVP.Config())
    rec = _record(example_run, "realnvp")
    assert rec["model"]["config"] == {**vars(RealNVP.Config()), **RealNVP.tiny_config}
    assert rec["metrics"]["num_parameters"] == tiny.num_parameters() < full.num_parameters()


def test_load_run_refuses_another_class_under_the_recorded_name(example_run, plugins):
    run_dir = example_run / "smoke" / "realnvp" / "seed0"
    with pytest.raises(ConfigError) as e:
        genbench.load_run(run_dir, model_file=f"{plugins / 'flow_mistakes.py'}:RealNVPRenamed")
    assert str(e.value) == (f"{plugins / 'flow_mistakes.py'}:RealNVPRenamed is class RealNVPRenamed, but {run_dir} "
                            f"trained class RealNVP: pass model_file='{plugins / 'flow_mistakes.py'}:RealNVP'")
    model = genbench.load_run(run_dir, model_file=EXAMPLE)
    assert type(model).__name__ == "RealNVP" and not model.training


def test_an_unclamped_flow_sample_gets_the_flow_hint(plugins):
    from genbench.registry import load_generator_from_file

    cls = load_generator_from_file(f"{plugins / 'flow_mistakes.py'}:UnclampedFlow")
    model = cls(genbench.config.make_config(cls, cls.tiny_config))
    with pytest.raises(SampleContractError) as e:
        precheck_sampling(model, seed=0)
    message = str(e.value)
    assert message.startswith("UnclampedFlow.sample(2) returned values in [-0.0") and message.endswith(FLOW_FIX)


def test_likelihood_mistakes_fail_or_are_marked_with_the_fix(tmp_path, plugins, data_root):
    spec = plugins / "flow_mistakes.py"
    models = ["flow-scalar", "flow-continuous", "flow-per-dim"]
    r = CliRunner().invoke(main, [
        "run", "--suite", "smoke", "--models", ",".join(models), "--budget", "images=1024", "--out", str(tmp_path),
        "--no-progress", "--data-root", data_root, "--device", "cpu",
        *(arg for cls in ("ScalarFlow", "ContinuousFlow", "PerDimensionFlow") for arg in ("--model", f"{spec}:{cls}"))])
    assert r.exit_code == 1, r.output
    seen = " ".join(r.stderr.split())  # rich wraps long lines

    scalar = _record(tmp_path, "flow-scalar")  # refused at the door: nothing trained
    assert scalar["status"] == "failed" and scalar["budget"]["achieved"] is None and not scalar.get("traceback")
    assert scalar["error"] == (
        "ScalarFlow.log_likelihood(x) returned a scalar (shape ()); log_likelihood must return [2], one "
        "log-likelihood in nats per image: keep the batch dimension (return log_px, not log_px.mean() or "
        "log_px.sum())")
    assert not (tmp_path / "smoke" / "flow-scalar" / "seed0" / "checkpoint.pt").exists()

    # A fresh flow's density is below 1 per pixel, so the door passes it; trained, it rises above: refused
    # before evaluation samples anything.
    continuous = _record(tmp_path, "flow-continuous")
    assert continuous["status"] == "failed" and continuous["budget"]["achieved"]["images"] == 1024
    assert continuous["error"].startswith("ContinuousFlow.log_likelihood(x) returned +")
    assert continuous["error"].endswith(NEGATIVE_NLL_FIX) and "\n" not in continuous["error"]
    assert "fid" not in continuous["metrics"] and "nll_bpd" not in continuous["metrics"]

    per_dim = _record(tmp_path, "flow-per-dim")  # in range of the contract, out of any plausible range: kept
    bpd = per_dim["metrics"]["nll_bpd"]
    assert per_dim["status"] == "ok" and 0 < bpd < 8 / 784 * 2
    warning = next(w for w in per_dim["warnings"] if w.startswith("nll_bpd"))
    assert "below 0.5 bits/dim" in warning and "likely nats per dimension" in warning
    for error in (scalar["error"], continuous["error"]):
        assert error in seen
    assert f"Warning: flow-per-dim seed 0: {warning}" in seen

    board = tmp_path / "smoke"
    row = next(line for line in (board / "leaderboard.md").read_text().splitlines()
               if line.startswith("| flow-per-dim |"))
    assert "(bound; < 0.5: nats per dimension?)" in row
    csv = pd.read_csv(board / "leaderboard.csv").set_index("model")
    assert csv.loc["flow-per-dim", "nll_bpd_implausible"] == "< 0.5: nats per dimension?"
    assert bool(csv.loc["flow-per-dim", "nll_is_bound"]) is True
    assert math.isclose(csv.loc["flow-per-dim", "nll_bpd"], bpd)
    assert "<span>(bound; &lt; 0.5: nats per dimension?)</span>" in (board / "leaderboard.html").read_text()


def test_the_bound_the_example_computes_is_below_the_exact_8_bit_likelihood():
    """At initialisation the flow is its logit transform alone, which factorises over pixels, so the exact
    probability of each pixel's 8-bit bin is known: the Gaussian mass between the bin's edges after the
    transform. The example's value must be a lower bound of it (Jensen), and its log-mean-exp over
    dequantization draws an unbiased estimate of the probability itself (importance sampling)."""
    from examples.realnvp_flow import RealNVP

    torch.manual_seed(0)
    model = RealNVP(RealNVP.Config(couplings=2, channels=4)).eval()
    a = model.config.alpha
    x = torch.tensor([0, 1, 64, 128, 254, 255] * 2, dtype=torch.uint8).view(1, 1, 1, 12).expand(2, 1, 28, 12)
    x = torch.cat([x, x[..., :12], x[..., :4]], dim=-1).contiguous()  # [2, 1, 28, 28]
    edges = torch.stack([x.double() / 256, (x.double() + 1) / 256])
    s = a + (1 - 2 * a) * edges
    cdf = torch.distributions.Normal(0.0, 1.0).cdf(torch.log(s) - torch.log1p(-s))
    exact = (cdf[1] - cdf[0]).log().flatten(1).sum(1)  # [2] nats
    draws = 400
    with torch.no_grad():
        ll = torch.stack([model.log_likelihood(x, torch.Generator().manual_seed(k)) for k in range(draws)]).double()
    assert (ll.mean(0) < exact).all()  # the bound is below the likelihood
    estimate = torch.logsumexp(ll, 0) - math.log(draws)
    torch.testing.assert_close(estimate, exact, rtol=0, atol=0.15)  # float32 sums of 784 terms, 400 draws
    assert (exact - ll.mean(0)).min() > 0.25  # and the gap is wider than that: the test tells a bound from the value
