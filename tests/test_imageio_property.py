"""Property-based: any bytes or any array given to the loader give a clean error or a valid image batch."""

import io
import re
import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import array_shapes, arrays

from genbench.errors import InputError
from genbench.files.images import load_images

SUFFIXES = [".png", ".jpg", ".bmp", ".npy", ".npz"]
PROP = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _check(path: Path) -> None:
    try:
        out = load_images(path, min_images=1)
    except InputError as exc:
        message = str(exc)
        assert message and "\n" not in message and "Traceback" not in message
        return
    assert out.images.dtype.is_floating_point is False
    assert out.images.ndim == 4 and tuple(out.images.shape[1:]) == (1, 28, 28) and len(out) >= 1


@PROP
@given(data=st.binary(max_size=2048), suffix=st.sampled_from(SUFFIXES))
def test_random_bytes(data, suffix):
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"x{suffix}"
        path.write_bytes(data)
        _check(path)


@PROP
@given(data=st.binary(min_size=1, max_size=512), suffix=st.sampled_from([".png", ".jpg", ".bmp"]))
def test_valid_header_then_garbage(data, suffix):
    from PIL import Image

    buf = io.BytesIO()
    Image.new("L", (28, 28), 7).save(buf, format={".png": "PNG", ".jpg": "JPEG", ".bmp": "BMP"}[suffix])
    head = buf.getvalue()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"x{suffix}"
        path.write_bytes(head[: len(head) // 2] + data)  # truncated file followed by random bytes
        _check(path)


@PROP
@given(a=arrays(dtype=st.sampled_from([np.uint8, np.int16, np.float32, np.float64, np.bool_]),
                shape=array_shapes(min_dims=1, max_dims=4, min_side=1, max_side=30),
                elements=None))
def test_random_arrays(a):
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "x.npy"
        np.save(path, a, allow_pickle=False)
        _check(path)


@pytest.mark.parametrize("dtype", [object])
def test_pickled_arrays_never_load(tmp_path, dtype):
    path = tmp_path / "x.npy"
    np.save(path, np.array([{"a": 1}], dtype=dtype), allow_pickle=True)
    with pytest.raises(InputError, match=re.escape("x.npy")):
        load_images(path, min_images=1)
