"""`genbench eval` end to end, and every kind of bad input it must refuse cleanly."""

from __future__ import annotations

import io
import json
import os
import struct
import zlib

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from PIL import Image

import genbench.files.images
from genbench.cli.eval import eval_command
from genbench.data.datasets import load_split

pytestmark = pytest.mark.usefixtures("single_thread")


@pytest.fixture(scope="module")
def digits(data_root) -> np.ndarray:
    return load_split("mnist", "train", data_root).images[:64, 0].numpy()


def _folder(path, images, ext="png"):
    path.mkdir(parents=True, exist_ok=True)
    for i, a in enumerate(images):
        Image.fromarray(a).save(path / f"{i:03d}.{ext}")
    return path


def _run(args, cwd=None):
    runner = CliRunner()
    old = os.getcwd()
    if cwd is not None:
        os.chdir(cwd)
    try:
        return runner.invoke(eval_command, args, catch_exceptions=False)
    finally:
        os.chdir(old)


def _assert_one_line_error(result, *fragments):
    assert result.exit_code == 2, (result.exit_code, result.stdout, result.stderr)
    err = result.stderr.strip()
    assert err.startswith("Error: ") and "\n" not in err and "Traceback" not in err, err
    for fragment in fragments:
        assert fragment in err, (fragment, err)


def _bomb_png() -> bytes:
    """A valid 8x8 PNG whose header claims 30000x30000 pixels."""
    buf = io.BytesIO()
    Image.new("L", (8, 8)).save(buf, format="PNG")
    data = bytearray(buf.getvalue())
    ihdr = bytearray(data[12:29])  # b"IHDR" + 13 bytes
    ihdr[4:12] = struct.pack(">II", 30000, 30000)
    data[12:29] = ihdr
    data[29:33] = struct.pack(">I", zlib.crc32(bytes(ihdr)))
    return bytes(data)


def test_eval_writes_json_where_asked_and_never_in_input(tmp_path, digits, data_root):
    samples = _folder(tmp_path / "samples", digits[:40])
    before = sorted(os.listdir(samples))
    work = tmp_path / "work"
    work.mkdir()
    result = _run(["--samples", str(samples), "--device", "cpu", "--data-root", data_root, "--metrics", "fid"],
                  cwd=work)
    assert result.exit_code == 0, result.stderr
    assert os.listdir(work) == [] and "fid" in result.stdout  # as every command: JSON only when --json asks
    result = _run(["--samples", str(samples), "--device", "cpu", "--data-root", data_root, "--json", "eval.json"],
                  cwd=work)
    assert result.exit_code == 0, result.stderr
    assert sorted(os.listdir(samples)) == before  # the input folder is only read
    record = json.loads((work / "eval.json").read_text())
    for key in ("fid", "fid_ci_low", "fid_ci_high", "kid", "kid_std", "is", "is_std", "precision", "recall",
                "density", "coverage", "n_samples", "feature_images_per_s", "eval_images_per_s"):
        assert key in record, key
    assert record["n_samples"] == 40 and 0 < record["fid"] < 50 and record["is"] > 2
    assert record["extractor"]["name"] == "genbench-mnist" and len(record["extractor"]["sha256"]) == 64
    assert record["psnr"] is None and "reference" in record["null_reasons"]["psnr"]
    assert "FID is biased" in result.stderr


def test_metrics_option_computes_only_the_groups_asked_for_with_equal_values(tmp_path, digits, data_root):
    samples = _folder(tmp_path / "samples", digits[:40])
    base = ["--samples", str(samples), "--device", "cpu", "--data-root", data_root, "--json", "-"]
    full = json.loads(_run(base).stdout)
    some = _run([*base, "--metrics", "kid,is"])
    assert some.exit_code == 0, some.stderr
    record = json.loads(some.stdout)
    for key in ("kid", "kid_std", "is", "is_std"):
        assert record[key] == full[key], key
    for key in ("fid", "fid_ci_low", "precision", "coverage", "confident_fraction", "fid_inf", "classes_covered",
                "class_kl", "fid_intra", "copy_fraction", "copy_ct", "copy_ct_p"):
        assert record[key] is None and record["null_reasons"][key] == "not requested (metrics: is, kid)", key
    # The new metrics are in genbench eval by default, timed; 40 images are too few for fid_inf, fid_intra, copy_ct.
    assert full["classes_covered"] >= 1 and full["class_kl"] >= 0
    assert full["fid_intra"] is None and full["copy_ct"] is None and "copy_ct_p" in full["null_reasons"]
    assert full["null_reasons"]["fid_inf"] == ("needs more than 640 samples (its smallest subset, 0.2 of them, "
                                               "must exceed the 128-d features), got 40")
    assert {"fid_inf_seconds", "classes_seconds", "copy_test_seconds"} <= set(full["timings"])
    ci = json.loads(_run([*base, "--metrics", "fid_ci"]).stdout)
    assert (ci["fid"], ci["fid_ci_low"], ci["fid_ci_high"]) == (full["fid"], full["fid_ci_low"], full["fid_ci_high"])
    assert "fid" not in ci["null_reasons"] and ci["kid"] is None
    bad = _run([*base, "--metrics", "fid,lpips"])
    assert bad.exit_code == 2 and "lpips; choose from fid, fid_ci, kid, is, prdc, confident_fraction" in bad.stderr


def test_n_reads_only_what_it_scores(tmp_path, digits, data_root):
    samples = _folder(tmp_path / "samples", digits[:8])
    (samples / "z_broken.png").write_bytes(b"not a png")  # after the first 8 in name order: never opened
    result = _run(["--samples", str(samples), "--device", "cpu", "--data-root", data_root, "--json", "-",
                   "--n", "8", "--metrics", "is"])
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["n_samples"] == 8


def test_eval_npy_with_reference_to_stdout(tmp_path, digits, data_root):
    np.save(tmp_path / "gen.npy", digits[:20].astype(np.float32) / 255.0)
    noisy = np.clip(digits[:20].astype(int) + 10, 0, 255).astype(np.uint8)
    np.save(tmp_path / "ref.npy", noisy[:, None])
    result = _run(["--samples", str(tmp_path / "gen.npy"), "--reference", str(tmp_path / "ref.npy"),
                   "--json", "-", "--device", "cpu", "--data-root", data_root, "--n", "16"])
    assert result.exit_code == 0, result.stderr
    record = json.loads(result.stdout)
    assert record["n_samples"] == 16
    diff = digits[:16].astype(float) - noisy[:16].astype(float)
    assert record["mse"] == pytest.approx((diff**2).mean())
    assert record["psnr"] > 20 and 0 < record["ssim"] <= 1
    assert not (tmp_path / "eval.json").exists()


def test_inception_without_weights_is_a_clear_error(tmp_path, digits, monkeypatch):
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    samples = _folder(tmp_path / "s", digits[:4])
    _assert_one_line_error(_run(["--samples", str(samples), "--features", "inception", "--device", "cpu",
                                 "--json", str(tmp_path / "o.json")]), "InceptionV3 weights", "--inception-weights")


def _bad_cases(tmp_path, digits):
    """name -> (folder, fragments expected in the error)."""
    cases = {}

    def good(name, n=3):
        return _folder(tmp_path / name, digits[:n])

    cases["missing"] = (tmp_path / "does-not-exist", ["no such file or folder"])
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "notes.txt").write_text("hi")
    cases["empty"] = (tmp_path / "empty", ["no .png", "1 other entries ignored"])
    d = good("truncated")
    buf = io.BytesIO()
    Image.fromarray(digits[5]).save(buf, format="PNG")
    (d / "cut.png").write_bytes(buf.getvalue()[: len(buf.getvalue()) // 2])
    cases["truncated"] = (d, ["cut.png", "truncated"])
    d = good("zero")
    (d / "zero.png").write_bytes(b"")
    cases["zero"] = (d, ["zero.png", "empty file"])
    d = good("text")
    (d / "fake.jpg").write_text("not an image")
    cases["unreadable"] = (d, ["fake.jpg", "not a readable"])
    d = good("bomb")
    (d / "bomb.png").write_bytes(_bomb_png())
    cases["bomb"] = (d, ["bomb.png", "decompression bomb"])
    d = good("nan")
    np.save(d / "nan.npy", np.full((2, 28, 28), np.nan, np.float32))
    cases["nan"] = (d, ["nan.npy", "non-finite"])
    d = good("inf")
    np.save(d / "inf.npy", np.full((2, 28, 28), np.inf, np.float64))
    cases["inf"] = (d, ["inf.npy", "non-finite"])
    d = good("range")
    np.save(d / "range.npy", np.full((2, 28, 28), 2.0, np.float32))
    cases["range"] = (d, ["range.npy", "float values in [2.00, 2.00]; samples must be in [0, 1]"])
    d = good("object")
    np.save(d / "obj.npy", np.array([object()], dtype=object), allow_pickle=True)
    cases["object"] = (d, ["obj.npy", "Python objects"])
    d = good("loop")
    os.symlink("loop.png", d / "loop.png")
    cases["symlink_loop"] = (d, ["loop.png", "symlink loop"])
    d = good("mode")
    Image.fromarray(np.zeros((28, 28), np.float32), mode="F").save(d / "float.tif", format="TIFF")
    os.rename(d / "float.tif", d / "float.png")
    cases["tiff_named_png"] = (d, ["float.png", "not a readable PNG/JPEG/BMP"])
    return cases


def test_every_bad_input_is_a_one_line_error_and_skippable(tmp_path, digits, data_root):
    for name, (folder, fragments) in _bad_cases(tmp_path, digits).items():
        result = _run(["--samples", str(folder), "--device", "cpu", "--json", str(tmp_path / f"{name}.json")])
        _assert_one_line_error(result, *fragments)
        if name not in ("missing", "empty"):  # a usable rest: --skip-bad scores it and says what it left out
            assert "--skip-bad" in result.stderr
            result = _run(["--samples", str(folder), "--skip-bad", "--device", "cpu", "--data-root", data_root,
                           "--json", str(tmp_path / f"{name}.json")])
            assert result.exit_code == 0, (name, result.stderr)
            assert "skipped 1 unusable file" in result.stderr and fragments[0] in result.stderr
            assert json.loads((tmp_path / f"{name}.json").read_text())["n_samples"] == 3


def test_symlink_loop_folder_and_single_image(tmp_path, digits):
    os.symlink(tmp_path / "loopdir", tmp_path / "loopdir")
    _assert_one_line_error(_run(["--samples", str(tmp_path / "loopdir")]), "loopdir", "symlink loop")
    one = _folder(tmp_path / "one", digits[:1])
    _assert_one_line_error(_run(["--samples", str(one)]), "1 usable image", "at least 2")


def test_file_vanishing_mid_scan(tmp_path, digits, monkeypatch):
    folder = _folder(tmp_path / "v", digits[:4])
    scan = genbench.files.images._scan_folder

    def scan_then_delete(path):
        listed = scan(path)
        os.remove(folder / "001.png")  # another process removes a file after the listing
        return listed

    monkeypatch.setattr(genbench.files.images, "_scan_folder", scan_then_delete)
    _assert_one_line_error(_run(["--samples", str(folder), "--json", str(tmp_path / "o.json")]), "001.png", "vanished")


def test_unmatched_pairs_with_reference(tmp_path, digits, data_root):
    samples = _folder(tmp_path / "s", digits[:4])
    reference = _folder(tmp_path / "r", digits[:3])
    (reference / "999.png").write_bytes((reference / "000.png").read_bytes())
    result = _run(["--samples", str(samples), "--reference", str(reference), "--json", str(tmp_path / "o.json")])
    _assert_one_line_error(result, "1 sample(s) without a reference", "003", "999")
    result = _run(["--samples", str(samples), "--reference", str(reference), "--skip-bad", "--device", "cpu",
                   "--data-root", data_root, "--json", str(tmp_path / "o.json")])
    assert result.exit_code == 0, result.stderr
    record = json.loads((tmp_path / "o.json").read_text())
    assert record["n_samples"] == 3 and record["mse"] == 0.0 and "matched pairs only" in result.stderr


def test_other_modes_and_sizes_are_converted_with_warnings(tmp_path, digits, data_root):
    folder = tmp_path / "modes"
    folder.mkdir()
    a = digits[0]
    Image.fromarray(a).convert("RGB").save(folder / "rgb.png")
    rgba = np.dstack([a, a, a, np.full_like(a, 128)])
    Image.fromarray(rgba, "RGBA").save(folder / "rgba.png")
    Image.fromarray(a).convert("P").save(folder / "pal.png")
    Image.fromarray(a.astype(np.uint16) * 257).save(folder / "deep.png")  # I;16
    Image.fromarray(a).resize((64, 64), Image.BILINEAR).save(folder / "big.jpg", quality=95)
    result = _run(["--samples", str(folder), "--device", "cpu", "--data-root", data_root, "--json", "-"])
    assert result.exit_code == 0, result.stderr
    assert "resized 1 file(s)" in result.stderr and "64x64" in result.stderr
    assert "alpha channel of 1 image" in result.stderr and "JPEG" in result.stderr
    record = json.loads(result.stdout)
    # The colour and 16-bit files were converted, and eval says so as it says resizing.
    assert ("samples: converted 4 file(s) to 8-bit gray: 16-bit gray scaled to 8-bit, round(v * 255 / 65535) "
            "(1); P to gray by ITU-R 601-2 luma (1); RGB to gray by ITU-R 601-2 luma (1); RGBA to gray by "
            "ITU-R 601-2 luma (1)") in record["warnings"]
    assert "Warning: samples: converted 4 file(s) to 8-bit gray" in " ".join(result.stderr.split())
    assert record["n_samples"] == 5 and record["precision"] is None  # 5 samples: too few for k=5 radii


def test_eval_rescores_a_folder_written_by_genbench_run(tmp_path, data_root):
    import json

    from click.testing import CliRunner

    from genbench.cli import main
    from genbench.run.plan import RunOptions, run_suite
    from genbench.suite import parse_suite

    suite = parse_suite({"name": "e", "version": 1, "dataset": "mnist", "models": ["seed-gan"], "tiny": True,
                         "budget": {"steps": 20}, "eval": {"n_samples": 64}})
    (rec,) = run_suite(suite, RunOptions(out=tmp_path, data_root=data_root), show_progress=False)
    out = tmp_path / "eval.json"
    r = CliRunner().invoke(main, ["eval", "--samples", str(tmp_path / "e" / "seed-gan" / "seed0" / "samples"),
                                  "--json", str(out), "--data-root", data_root])
    assert r.exit_code == 0, r.output
    scored = json.loads(out.read_text())
    for key in ("fid", "kid", "is", "precision", "recall", "density", "coverage", "copy_fraction", "fid_ssl",
                "precision_ssl", "recall_ssl"):
        assert scored[key] == pytest.approx(rec.metrics[key], rel=1e-6, abs=1e-9), key
    assert rec.extractor["ssl_sha256"] == scored["extractor"]["ssl_sha256"]
    assert {"eval_ssl_features_seconds", "eval_fid_ssl_seconds"} <= set(rec.timings)
