"""Your own lens (--lens FILE.py:CLASS, register_lens): the feature-based metrics computed again in it, under
suffixed keys, against statistics cached by its weights' hash; what it refuses, in one line."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from torch import nn

from genbench.data.splits import REFERENCE, TRAIN, split_images
from genbench.errors import ConfigError
from genbench.evaluate import EvalConfig, evaluate_samples
from genbench.features import reference_path
from genbench.features.user_lens import _EXTRACTORS, _LENSES, lens_extractor, load_lens, register_lens
from genbench.metrics.fid import fid_from_features
from genbench.metrics.group import _GROUPS
from genbench.metrics.spec import _METRICS

pytestmark = pytest.mark.usefixtures("single_thread")

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "my_lens.py"
FID_PRDC = EvalConfig(metric_groups=frozenset({"fid", "prdc"}))


@pytest.fixture(autouse=True)
def _fresh_registries():
    """A registered lens is used in every evaluation of the process: a test's must not outlive it."""
    saved = [dict(r) for r in (_METRICS, _GROUPS, _LENSES, _EXTRACTORS)]
    yield
    for registry, before in zip((_METRICS, _GROUPS, _LENSES, _EXTRACTORS), saved, strict=True):
        registry.clear()
        registry.update(before)


@pytest.fixture(scope="module")
def images(data_root):
    return split_images("mnist", TRAIN, data_root)[:600]


def blurred(images: torch.Tensor, sigma: float = 1.0) -> torch.Tensor:
    """Gaussian blur (5x5 kernel) of uint8 images, quantized back to uint8."""
    x = torch.arange(5, dtype=torch.float32) - 2
    g = torch.exp(-x**2 / (2 * sigma**2))
    kernel = (g[:, None] * g[None, :] / g.sum() ** 2)[None, None]
    out = torch.nn.functional.conv2d(images.float(), kernel, padding=2)
    return out.round().clamp(0, 255).to(torch.uint8)


def test_the_example_lens_scores_real_images_better_than_blurred_ones_and_equals_its_own_fid(images, data_root):
    lens = load_lens(f"{EXAMPLE}:RandomConvLens")
    assert (lens.name, lens.dim, lens.dtype) == ("randconv", 64, "float32")
    real = evaluate_samples(images, dataset="mnist", data_root=data_root, config=FID_PRDC)
    blur = evaluate_samples(blurred(images), dataset="mnist", data_root=data_root, config=FID_PRDC)
    assert real.metrics["fid_randconv"] < blur.metrics["fid_randconv"]
    assert real.metrics["precision_randconv"] > blur.metrics["precision_randconv"]
    assert real.metrics["kid_randconv"] is None
    assert real.null_reasons["kid_randconv"] == "not requested (metrics: fid, prdc)"
    # the same FID, computed here from the lens itself on float images in [0, 1]
    module = lens.cls().eval()
    with torch.no_grad():
        ours = module(images.float() / 255).double()
        ref = module(split_images("mnist", REFERENCE, data_root).float() / 255).double()
    expected = fid_from_features(ours.float(), ref.mean(0).float().numpy(), np.cov(ref.numpy(), rowvar=False))
    assert real.metrics["fid_randconv"] == pytest.approx(expected, rel=1e-4)
    assert real.extractor["lens_randconv_sha256"] == lens.sha256
    assert real.features["lens-randconv"].shape == (600, 64)
    # the main lens's numbers do not change when a lens is added
    _LENSES.clear()
    alone = evaluate_samples(images, dataset="mnist", data_root=data_root, config=FID_PRDC)
    assert alone.metrics["fid"] == real.metrics["fid"] and "fid_randconv" not in alone.metrics


def test_reference_statistics_are_cached_under_the_lens_weights_hash(images, data_root):
    lens = load_lens(f"{EXAMPLE}:RandomConvLens")
    evaluate_samples(images[:50], dataset="mnist", data_root=data_root, config=EvalConfig(
        metric_groups=frozenset({"fid"})))
    path = reference_path("mnist", REFERENCE, lens_extractor(lens))
    assert path.is_file() and lens.sha256[:16] in path.name


class _Float64Lens(nn.Module):
    name = "wide64"

    def forward(self, images):
        flat = images.flatten(1).double()
        return torch.stack([flat.mean(1), flat.std(1), flat[:, :392].mean(1), flat[:, 392:].mean(1),
                            (flat > 0.5).double().mean(1)], dim=1)


def test_width_and_dtype_are_read_from_the_lens_and_the_numbers_repeat(images, data_root):
    lens = register_lens(_Float64Lens)
    assert (lens.dim, lens.dtype) == (5, "float64")
    first = evaluate_samples(images, dataset="mnist", data_root=data_root, config=FID_PRDC)
    again = evaluate_samples(images, dataset="mnist", data_root=data_root, config=FID_PRDC)
    assert first.metrics["fid_wide64"] > 0
    assert {k: v for k, v in first.metrics.items() if k.endswith("_wide64")} == {
        k: v for k, v in again.metrics.items() if k.endswith("_wide64")}


class _NoName(nn.Module):
    def forward(self, x):
        return x.flatten(1)


class _BadShape(nn.Module):
    name = "badshape"

    def forward(self, x):
        return x


class _NeedsArgs(nn.Module):
    name = "needsargs"

    def __init__(self, width):
        super().__init__()


class _Unseeded(nn.Module):
    name = "unseeded"

    def __init__(self):
        super().__init__()
        self.proj = nn.Linear(784, 8)

    def forward(self, x):
        return self.proj(x.flatten(1))


class _Clash(nn.Module):
    name = "ssl"  # fid_ssl exists: its keys would overwrite the self-supervised lens's

    def forward(self, x):
        return x.flatten(1)


def test_a_lens_that_breaks_the_contract_is_refused_in_one_line_naming_the_fix():
    with pytest.raises(ConfigError, match="needs a class attribute name, lower-case letters, digits and _"):
        register_lens(_NoName, source="t:_NoName")
    with pytest.raises(ConfigError, match=r"^t:_BadShape: forward returned shape \(2, 1, 28, 28\) for 2 images; "
                                          r"a lens maps \[n,1,28,28\] floats in \[0, 1\] to \[n,d\] features$"):
        register_lens(_BadShape, source="t:_BadShape")
    with pytest.raises(ConfigError, match=r"^t:_NeedsArgs: building it with no arguments failed: TypeError"):
        register_lens(_NeedsArgs, source="t:_NeedsArgs")
    with pytest.raises(ConfigError, match="lens name 'ssl' would reuse metric key\\(s\\) fid_ssl"):
        register_lens(_Clash, source="t:_Clash")
    with pytest.raises(ConfigError, match=r"^t:_Unseeded: its weights depend on torch's global random state; seed"):
        register_lens(_Unseeded, source="t:_Unseeded")
    assert not any(k.endswith(("_badshape", "_needsargs", "_unseeded")) for k in _METRICS)  # nothing half-registered


def test_eval_cli_takes_a_lens_and_saves_every_lens_features(images, data_root, tmp_path):
    from genbench.cli import main

    samples = tmp_path / "s.npy"
    np.save(samples, images[:100].numpy())
    out, folder = tmp_path / "eval.json", tmp_path / "features"
    r = CliRunner().invoke(main, ["eval", "--samples", str(samples), "--data-root", data_root, "--metrics", "fid",
                                  "--lens", f"{EXAMPLE}:RandomConvLens", "--save-features", str(folder),
                                  "--json", str(out)])
    assert r.exit_code == 0, r.output
    record = json.loads(out.read_text())
    assert record["fid_randconv"] > 0 and record["extractor"]["lens_randconv_features"] == "64 x float32"
    saved = {p.name: np.load(p) for p in folder.glob("*.npy")}
    assert {k: v.shape for k, v in saved.items()} == {"genbench-mnist.npy": (100, 128), "lens-randconv.npy": (100, 64)}
    lens = _LENSES["randconv"].cls().eval()
    with torch.no_grad():
        direct = lens(images[:100].float() / 255).numpy()
    np.testing.assert_allclose(saved["lens-randconv.npy"], direct, rtol=1e-5, atol=1e-6)
    r = CliRunner().invoke(main, ["eval", "--samples", str(samples), "--lens", f"{EXAMPLE}:Nope"])
    assert r.exit_code == 2 and "my_lens.py has no class 'Nope'" in r.stderr
