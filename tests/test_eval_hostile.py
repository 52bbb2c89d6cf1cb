"""Hostile input to `genbench eval` (issue 14, findings 3, 4 and the eval part of 8).

Each test names the finding it guards. Where the behaviour before the fix was to
read without end (a FIFO, /dev/zero), the read runs where a regression cannot take
the machine down: on a daemon thread with a deadline, or in a child process with a
memory limit.
"""

from __future__ import annotations

import io
import os
import re
import subprocess
import sys
import threading
import time
import tracemalloc
import zipfile

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

import genbench.files.decode as gdecode
import genbench.files.images as gio
from genbench.cli.eval import eval_command
from genbench.errors import InputError
from genbench.files.images import load_images


def _digits(folder, n=3):
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for i in range(n):
        Image.fromarray(rng.integers(0, 256, (28, 28), dtype=np.uint8)).save(folder / f"{i:03d}.png")
    return folder


def _within(seconds, fn):
    """``fn()``'s result or exception; AssertionError if it has not returned after ``seconds``."""
    box = {}

    def target():
        try:
            box["value"] = fn()
        except BaseException as exc:  # handed back to the test
            box["error"] = exc

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(seconds)
    assert not thread.is_alive(), f"still reading after {seconds} s"
    if "error" in box:
        raise box["error"]
    return box["value"]


# -- finding 3: only regular files are read ----------------------------------------------

def test_a_fifo_named_png_is_refused_without_blocking(tmp_path):
    folder = _digits(tmp_path / "s")
    os.mkfifo(folder / "x.png")  # nobody ever writes to it: opening it for reading would block
    with pytest.raises(InputError, match=r"x\.png: is a named pipe \(FIFO\), not a regular file"):
        _within(20, lambda: load_images(folder))
    loaded = _within(20, lambda: load_images(folder, skip_bad=True))
    assert len(loaded) == 3 and loaded.skipped[0][0] == "x.png"
    with pytest.raises(InputError, match="named pipe"):  # given as the file itself
        _within(20, lambda: load_images(folder / "x.png"))


def test_a_link_to_dev_zero_is_refused_unread(tmp_path):
    folder = _digits(tmp_path / "s")
    os.symlink("/dev/zero", folder / "z.png")
    os.symlink("/dev/zero", folder / "z.npy")
    os.symlink(folder / "000.png", folder / "link.png")  # a link to a regular file is read
    # In a child whose address space may grow by only 1 GiB: reading /dev/zero must not get that far.
    code = (
        "import resource, sys\n"
        "import genbench.files.images as gio\n"
        "from genbench.errors import InputError\n"
        "vm = int(open('/proc/self/statm').read().split()[0]) * resource.getpagesize()\n"
        "resource.setrlimit(resource.RLIMIT_AS, (vm + 2**30, vm + 2**30))\n"
        "try:\n"
        "    gio.load_images(sys.argv[1])\n"
        "except InputError as exc:\n"
        "    print(exc)\n"
        "print(len(gio.load_images(sys.argv[1], skip_bad=True)))\n"
    )
    out = subprocess.run([sys.executable, "-c", code, str(folder)], capture_output=True, text=True, timeout=120,
                         check=False)
    assert out.returncode == 0, out.stderr[-2000:]
    message, count = out.stdout.strip().splitlines()
    assert "z.png: is a character device, not a regular file: not read" in message
    assert "z.npy: is a character device" in message and "2 unusable files" in message
    assert count == "4"


# -- per-file size cap and read timeout ---------------------------------------------------

def test_file_size_limit(tmp_path):
    folder = _digits(tmp_path / "s")
    big = np.random.default_rng(1).integers(0, 256, (200, 200), dtype=np.uint8)
    Image.fromarray(big).save(folder / "big.png")
    size = (folder / "big.png").stat().st_size
    with pytest.raises(InputError, match=rf"big\.png: {size} bytes is over the per-file limit of 10000 bytes"):
        load_images(folder, file_limit=10_000)
    assert len(load_images(folder, file_limit=10_000, skip_bad=True)) == 3


def test_a_file_that_grows_while_read_is_read_on_and_refused_over_the_limit(tmp_path, monkeypatch):
    """The first read asks for fstat's size + 1 byte; bytes beyond it are still read, up to the limit."""
    from genbench.files.safe_open import BadFile, read_regular

    path = tmp_path / "f.bin"
    path.write_bytes(bytes(range(256)) * 4)  # 1,024 bytes

    def stale(real):  # the size when the file was checked: it has grown since
        def call(target):
            st = list(real(target))
            st[6] = 10  # st_size
            return os.stat_result(st)
        return call

    monkeypatch.setattr(os, "stat", stale(os.stat))
    monkeypatch.setattr(os, "fstat", stale(os.fstat))
    assert read_regular(path, 2_000) == path.read_bytes()
    with pytest.raises(BadFile, match="grew past the per-file limit of 1000 bytes while being read"):
        read_regular(path, 1_000)


def test_read_timeout_names_the_file_and_the_rest_is_read(tmp_path, monkeypatch):
    folder = _digits(tmp_path / "s", n=4)
    read = gio._read_image

    def stalls_on_one(path, *args):
        if os.path.basename(path) == "001.png":
            time.sleep(30)  # a stalled network mount, as far as the reader can tell (daemon thread)
        return read(path, *args)

    monkeypatch.setattr(gio, "_read_image", stalls_on_one)
    start = time.monotonic()
    with pytest.raises(InputError, match=r"001\.png: no result after 0\.5 s \(read timeout\)"):
        load_images(folder, read_timeout=0.5)
    loaded = load_images(folder, read_timeout=0.5, skip_bad=True)
    assert loaded.keys == ["000", "002", "003"] and loaded.skipped[0][0] == "001.png"
    # Neither call waited for the stalled read; the margin is wide because the host is shared and noisy.
    assert time.monotonic() - start < 20


# -- finding 4: memory grows with --n, not with the decompressed size ---------------------

def _npy_header(shape, dtype) -> bytes:
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(buf, {"descr": np.lib.format.dtype_to_descr(np.dtype(dtype)),
                                              "fortran_order": False, "shape": shape})
    return buf.getvalue()


def _big_npz(path, n_images, dtype=np.float64):
    """An .npz holding zeros [n_images,28,28] written in pieces: small on disk and while written."""
    row = np.zeros((1000, 28, 28), dtype).tobytes()
    with (zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as zf,
          zf.open("samples.npy", "w", force_zip64=True) as member):
        member.write(_npy_header((n_images, 28, 28), dtype))
        for _ in range(n_images // 1000):
            member.write(row)


def _peak_bytes(fn):
    tracemalloc.start()
    try:
        result = fn()
        return result, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def _eval_peak_rss_mib(samples, n) -> float:
    """Peak resident memory of ``genbench eval --samples SAMPLES --n N`` in a fresh process, in MiB."""
    code = (
        "import resource, sys\n"
        "from genbench.cli import main\n"
        "try:\n"
        "    main(sys.argv[1:])\n"
        "except SystemExit as exc:\n"
        "    assert exc.code in (0, None), exc.code\n"
        "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)\n"
    )
    args = ["eval", "--samples", str(samples), "--n", str(n), "--json", str(samples) + ".json", "--metrics", "is"]
    out = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=600,
                         check=False)
    assert out.returncode == 0, out.stderr[-2000:]
    return int(out.stdout.strip().splitlines()[-1]) / 1024


def test_npz_memory_grows_with_n_not_with_its_unpacked_size(tmp_path):
    big, small = tmp_path / "big.npz", tmp_path / "small.npz"
    _big_npz(big, 50_000)  # 314 MB of float64 once unpacked, under 1 MB on disk
    _big_npz(small, 1_000)
    assert big.stat().st_size < 5 * 2**20
    baseline = _eval_peak_rss_mib(small, 100)  # first: it also caches the reference statistics
    extra = _eval_peak_rss_mib(big, 100) - baseline
    assert extra < 100, f"--n 100 of the large file took {extra:.0f} MiB more than of the small one"
    loaded, peak = _peak_bytes(lambda: load_images(big, max_images=100))
    assert len(loaded) == 100 and int(loaded.images.max()) == 0
    assert peak < 64 * 2**20, f"peak {peak / 2**20:.0f} MiB"


def test_npy_is_memory_mapped(tmp_path):
    path = tmp_path / "zeros.npy"
    header = _npy_header((50_000, 28, 28), np.float64)
    with open(path, "wb") as fh:
        fh.write(header)
    os.truncate(path, len(header) + 50_000 * 28 * 28 * 8)  # 314 MB of zeros, sparse on disk
    loaded, peak = _peak_bytes(lambda: load_images(path, max_images=200))
    assert len(loaded) == 200 and peak < 64 * 2**20, f"peak {peak / 2**20:.0f} MiB"


@pytest.mark.parametrize("suffix", [".npy", ".npz"])
def test_a_declared_size_over_the_cap_is_refused_naming_the_cap(tmp_path, suffix):
    path = tmp_path / f"huge{suffix}"
    header = _npy_header((10**8, 28, 28), np.float64)  # 627 GB declared, a few bytes present
    if suffix == ".npy":
        path.write_bytes(header + b"\0" * 64)
    else:
        with zipfile.ZipFile(path, "w") as zf:
            zf.writestr("samples.npy", header + b"\0" * 64)
    with pytest.raises(InputError, match=f"over the limit of {gio.ARRAY_LIMIT_BYTES} bytes"):
        load_images(path)


def test_truncated_npy_and_npz_are_clear_errors(tmp_path):
    header = _npy_header((4, 28, 28), np.uint8)
    (tmp_path / "a.npy").write_bytes(header + b"\0" * 100)
    with pytest.raises(InputError, match=re.escape("a.npy: truncated")):
        load_images(tmp_path / "a.npy")
    with zipfile.ZipFile(tmp_path / "b.npz", "w") as zf:
        zf.writestr("samples.npy", header + b"\0" * 100)
    with pytest.raises(InputError, match=re.escape("b.npz: array 'samples' is truncated")):
        load_images(tmp_path / "b.npz")


@pytest.mark.parametrize("order", ["C", "F"])
def test_arrays_read_in_pieces_equal_numpy(tmp_path, monkeypatch, order):
    monkeypatch.setattr(gdecode, "ARRAY_CHUNK_BYTES", 5 * 784 * 8)  # five images per piece
    x = np.random.default_rng(3).random((23, 1, 28, 28))
    x = np.asfortranarray(x) if order == "F" else x
    np.save(tmp_path / "a.npy", x)
    np.savez_compressed(tmp_path / "b.npz", samples=x)
    for name in ("a.npy", "b.npz"):
        assert np.array_equal(load_images(tmp_path / name).images.numpy(), np.round(x * 255).astype(np.uint8))
        assert np.array_equal(load_images(tmp_path / name, max_images=7).images.numpy(),
                              np.round(x[:7] * 255).astype(np.uint8))


# -- finding 8 (eval part): untrusted names are printed escaped ----------------------------

def test_file_names_are_printed_escaped(tmp_path):
    folder = _digits(tmp_path / "s", n=3)
    for name in ("a\nb.png", "\x1b[31mred.png", "[bold]x.png"):
        (folder / name).write_bytes(b"not an image")
    args = ["--samples", str(folder), "--json", str(tmp_path / "o.json")]
    result = CliRunner().invoke(eval_command, args, color=True, catch_exceptions=False)
    err = result.stderr.strip()
    assert result.exit_code == 2 and err.count("\n") == 0 and "\x1b" not in err, repr(err)
    assert r"a\nb.png" in err and r"\x1b[31mred.png" in err and "[bold]x.png" in err
    result = CliRunner().invoke(eval_command, [*args, "--skip-bad"], color=True, catch_exceptions=False)
    assert result.exit_code == 0, result.stderr
    warning = next(line for line in result.stderr.splitlines() if "skipped 3 unusable files" in line)
    assert r"a\nb.png" in warning and r"\x1b[31mred.png" in warning and "[bold]x.png" in warning
    assert "\x1b[31mred" not in result.stderr
