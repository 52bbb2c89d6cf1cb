"""Reading image folders and arrays into canonical [N,1,28,28] uint8."""

from __future__ import annotations

import io
import re

import numpy as np
import pytest
import torch
from PIL import Image

from genbench.errors import InputError
from genbench.files import decode as imageio
from genbench.files.images import load_images
from genbench.files.pairs import match_pairs
from genbench.files.pixels import luma, to_canonical_batch
from genbench.protocol import quantize


def _gray(seed: int, size: tuple[int, int] = (28, 28)) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, size=(size[1], size[0]), dtype=np.uint8)


def test_gray_png_roundtrip_is_exact(tmp_path):
    arrays = [_gray(i) for i in range(3)]
    for i, a in enumerate(arrays):
        Image.fromarray(a).save(tmp_path / f"{i}.png")
    loaded = load_images(tmp_path)
    assert loaded.images.dtype == torch.uint8 and loaded.images.shape == (3, 1, 28, 28)
    assert np.array_equal(loaded.images[:, 0].numpy(), np.stack(arrays))
    assert loaded.keys == ["0", "1", "2"] and loaded.warnings == []


def test_colour_modes_use_pil_luma_and_alpha_is_ignored(tmp_path):
    rgb = np.random.default_rng(0).integers(0, 256, size=(28, 28, 3), dtype=np.uint8)
    Image.fromarray(rgb, "RGB").save(tmp_path / "a_rgb.png")
    rgba = np.concatenate([rgb, np.full((28, 28, 1), 100, np.uint8)], axis=2)
    Image.fromarray(rgba, "RGBA").save(tmp_path / "b_rgba.png")
    Image.fromarray(rgb, "RGB").convert("P").save(tmp_path / "c_pal.png")
    Image.fromarray(rgb, "RGB").save(tmp_path / "d.bmp")
    loaded = load_images(tmp_path)
    expected = np.array(Image.fromarray(rgb, "RGB").convert("L"))
    assert np.array_equal(loaded.images[0, 0].numpy(), expected)
    assert np.array_equal(loaded.images[1, 0].numpy(), expected)
    palette = np.asarray(Image.open(tmp_path / "c_pal.png").convert("RGB").convert("L"))
    assert np.array_equal(loaded.images[2, 0].numpy(), palette)
    assert np.array_equal(loaded.images[3, 0].numpy(), expected)
    assert any("alpha channel of 1 image" in w for w in loaded.warnings)
    # The tensor path (torch-fidelity's RGB batches) is bit-identical to PIL's conversion.
    assert torch.equal(luma(torch.from_numpy(rgb).permute(2, 0, 1)[None])[0, 0], torch.from_numpy(expected))


def test_16_bit_images_are_scaled_not_clipped(tmp_path):
    a16 = (np.arange(784, dtype=np.uint32).reshape(28, 28) * 83).astype(np.uint16)  # 0..65,039
    Image.fromarray(a16).save(tmp_path / "deep.png")
    assert Image.open(tmp_path / "deep.png").mode == "I;16"
    Image.fromarray(_gray(1)).save(tmp_path / "flat.png")
    got = load_images(tmp_path).images[0, 0].numpy()
    assert np.array_equal(got, np.round(a16 / 257.0).astype(np.uint8))
    assert got.max() == 253  # 65,039 / 257; PIL's convert("L") would clip at 255 from 255 upwards


def test_other_sizes_are_resized_with_a_warning(tmp_path):
    big = _gray(2, (56, 40))
    Image.fromarray(big).save(tmp_path / "big.png")
    Image.fromarray(_gray(3)).save(tmp_path / "ok.png")
    loaded = load_images(tmp_path)
    expected = np.array(Image.fromarray(big).resize((28, 28), Image.BILINEAR))
    assert np.array_equal(loaded.images[0, 0].numpy(), expected)
    assert any("resized 1 file(s)" in w and "56x40" in w for w in loaded.warnings)
    batch = torch.from_numpy(big)[None, None].expand(1, 3, -1, -1).contiguous()
    assert torch.equal(to_canonical_batch(batch)[0, 0], torch.from_numpy(expected))


def test_arrays_uint8_float_and_int(tmp_path):
    x = np.random.default_rng(0).random((5, 28, 28)).astype(np.float32)
    np.save(tmp_path / "a_float.npy", x)
    np.save(tmp_path / "b_u8.npy", (x * 255).astype(np.uint8)[:, None])
    np.savez(tmp_path / "c_int.npz", samples=(x * 255).astype(np.int64), other=np.zeros(3))
    loaded = load_images(tmp_path)
    assert loaded.images.shape == (15, 1, 28, 28)
    assert torch.equal(loaded.images[:5], quantize(torch.from_numpy(x)[:, None]))  # same quantization as samples
    assert loaded.keys[:2] == ["a_float[0]", "a_float[1]"] and loaded.keys[5] == "b_u8[0]"
    single = load_images(tmp_path / "a_float.npy")
    assert single.single_array and len(single) == 5


@pytest.mark.parametrize("array, message", [
    (np.full((4, 28, 28), np.nan, np.float32), "non-finite"),
    (np.full((4, 28, 28), 1.5, np.float32), "float values in \\[1.50, 1.50\\]; samples must be in \\[0, 1\\]"),
    (np.full((4, 28, 28), 300, np.int32), "outside \\[0, 255\\]"),
    (np.zeros((4, 3, 28, 28), np.uint8), "is not \\(N,H,W\\)"),
    (np.zeros((4, 28, 28), bool), "dtype bool"),
    (np.empty((0, 28, 28), np.uint8), "holds no pixels"),
])
def test_bad_arrays_are_refused(tmp_path, array, message):
    np.save(tmp_path / "x.npy", array)
    with pytest.raises(InputError, match=message):
        load_images(tmp_path)


def test_object_arrays_are_never_unpickled(tmp_path):
    np.save(tmp_path / "obj.npy", np.array([{"a": 1}, None], dtype=object), allow_pickle=True)
    with pytest.raises(InputError, match=re.escape("obj.npy: holds Python objects")):
        load_images(tmp_path)


def test_skip_bad_keeps_the_good_files(tmp_path):
    for i in range(3):
        Image.fromarray(_gray(i)).save(tmp_path / f"{i}.png")
    (tmp_path / "empty.png").write_bytes(b"")
    loaded = load_images(tmp_path, skip_bad=True)
    assert len(loaded) == 3 and loaded.skipped == [("empty.png", "empty file (0 bytes)")]
    assert any("skipped 1 unusable file" in w for w in loaded.warnings)


def test_match_pairs_by_name(tmp_path):
    (tmp_path / "s").mkdir()
    (tmp_path / "r").mkdir()
    for name in ("a", "b", "c"):
        Image.fromarray(_gray(ord(name))).save(tmp_path / "s" / f"{name}.png")
    for name in ("c", "a", "b"):
        Image.fromarray(_gray(ord(name) + 1)).save(tmp_path / "r" / f"{name}.bmp")
    s, r = load_images(tmp_path / "s"), load_images(tmp_path / "r")
    si, ri, warnings = match_pairs(s, r)
    assert warnings == [] and torch.equal(ri[2, 0], torch.from_numpy(_gray(ord("c") + 1)))
    assert torch.equal(si, s.images)


@pytest.mark.skipif(imageio.pyspng is None, reason="pyspng (the optional fast PNG decoder) is not installed")
@pytest.mark.parametrize("mode", ["L", "RGB"])
def test_fast_png_decoder_gives_pils_pixels(tmp_path, mode):
    """libspng and PIL decode the same 8-bit gray and RGB PNGs to the same canonical pixels."""
    rng = np.random.default_rng(0)
    shape = (28, 28) if mode == "L" else (28, 28, 3)
    pixels = rng.integers(0, 256, size=shape, dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(pixels, mode=mode).save(buf, format="PNG")
    data = buf.getvalue()
    fast_notes: set[str] = set()
    pil_notes: set[str] = set()
    fast = imageio._decode_png_fast(data, imageio.PIXEL_LIMIT, fast_notes)
    assert fast is not None
    np.testing.assert_array_equal(fast, imageio._decode_pil(data, imageio.PIXEL_LIMIT, pil_notes))
    assert fast_notes == pil_notes == ({"gray RGB"} if mode == "RGB" else set())  # either decoder says it


def test_every_conversion_is_named_in_a_warning(tmp_path):
    a = _gray(5)
    Image.fromarray(a).save(tmp_path / "a_gray.png")  # canonical already: no word about it
    Image.fromarray(np.dstack([a, a, a])).save(tmp_path / "b_rgb.png")
    Image.fromarray(np.dstack([a, a, a])).save(tmp_path / "c_rgb.bmp")  # decoded by PIL, not libspng
    Image.fromarray(a.astype(np.uint16) * 257).save(tmp_path / "d_deep.png")
    np.save(tmp_path / "e_float.npy", a[None].astype(np.float32) / 255)
    loaded = load_images(tmp_path)
    assert loaded.warnings == [
        "samples: converted 4 file(s) to 8-bit gray: 16-bit gray scaled to 8-bit, round(v * 255 / 65535) (1); "
        "float arrays quantized, round(x * 255) (1); RGB to gray by ITU-R 601-2 luma (2)"
    ]
    # Gray inputs of equal values give the canonical image back: the conversions are named, not changed.
    assert all(torch.equal(img[0], torch.from_numpy(a)) for img in loaded.images)


def test_a_padded_32x32_set_is_named_as_shrunk_not_cropped(tmp_path):
    padded = np.pad(_gray(6), 2)
    Image.fromarray(padded).save(tmp_path / "a.png")
    Image.fromarray(padded).save(tmp_path / "b.png")
    (warning,) = load_images(tmp_path).warnings
    assert warning == (
        "samples: resized 2 file(s) to 28x28 with bilinear filtering (aspect ratio not kept): 32x32 (2); "
        "32x32 is shrunk, not cropped: a 28x28 set padded to 32x32 (as for LeNet) gets smaller digits than the "
        "reference, so crop its 2-pixel border first")
    for name in ("a.png", "b.png"):
        Image.fromarray(_gray(6, (30, 30))).save(tmp_path / name)
    assert "cropped" not in load_images(tmp_path).warnings[0]  # only 32x32 is named
