"""`import genbench` registers the domain extractors with torch-fidelity, in either import order (fresh interpreters).

Also guards the start-up of `genbench eval`: its imports reach neither torch-fidelity nor torchvision.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from PIL import Image

from genbench.data.datasets import load_split

N = 40

CALCULATE = """
from torch_fidelity.registry import FEATURE_EXTRACTORS_REGISTRY
names = sorted(n for n in FEATURE_EXTRACTORS_REGISTRY if n.startswith("genbench-"))
assert names == ["genbench-fashion-mnist", "genbench-mnist", "genbench-ssl-fashion-mnist", "genbench-ssl-mnist"], \
    f"registered: {names}"
m = torch_fidelity.calculate_metrics(input1=sys.argv[1], input2=sys.argv[2], fid=True, isc=True, kid=True,
                                     kid_subset_size=20, feature_extractor="genbench-mnist", cuda=False,
                                     verbose=False, cache=False, save_cpu_ram=True)
print(json.dumps(m))
"""

GENBENCH_FIRST = """
import json, sys
import genbench
assert "torch_fidelity" not in sys.modules
import torch_fidelity
""" + CALCULATE

TORCH_FIDELITY_FIRST = """
import json, sys
import torch_fidelity
import genbench
""" + CALCULATE


@pytest.fixture(scope="module")
def folders(tmp_path_factory, data_root):
    base = tmp_path_factory.mktemp("hook")
    train = load_split("mnist", "train", data_root).images
    for name, offset in (("a", 0), ("b", 1000)):
        (base / name).mkdir()
        for i in range(N):
            Image.fromarray(train[offset + i, 0].numpy()).save(base / name / f"{i:03d}.png")
    return base / "a", base / "b"


def _run(code: str, folders) -> dict:
    out = subprocess.run([sys.executable, "-c", code, str(folders[0]), str(folders[1])],
                         capture_output=True, text=True, timeout=300, check=False)
    assert out.returncode == 0, out.stderr[-2000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_registered_in_either_import_order(folders):
    import genbench.features as gf
    from genbench.files.images import load_images

    first = _run(GENBENCH_FIRST, folders)
    second = _run(TORCH_FIDELITY_FIRST, folders)
    assert first == second
    ex = gf.load_extractor("genbench", "mnist")
    a, b = (ex.extract(load_images(f).images).features for f in folders)
    ref = gf.ReferenceStats.from_features(b)
    from genbench.metrics.fid import fid_from_features

    assert first["frechet_inception_distance"] == pytest.approx(fid_from_features(a, ref.mu, ref.sigma), rel=1e-4)
    assert first["frechet_inception_distance"] > 0.5


def test_eval_start_up_imports_neither_torch_fidelity_nor_torchvision():
    code = """
import sys
import genbench.cli, genbench.cli.eval, genbench.evaluate, genbench.files.images
from genbench.features import load_extractor, load_reference
print(sorted(m for m in ("torch_fidelity", "torchvision", "torch._dynamo", "skimage") if m in sys.modules))
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, check=False)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == "[]"
