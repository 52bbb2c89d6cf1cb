"""Decoding one file: images (libspng for 8-bit PNGs where installed, PIL for everything else,
the same pixels) and ``.npy``/``.npz`` arrays read without unpickling, row by row."""

from __future__ import annotations

import io
import math
import os
import struct
import zipfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

try:  # optional speed-up (a compiled wheel that not every platform has); PIL decodes the same pixels
    import pyspng
except ImportError:
    pyspng = None
from genbench.files.pixels import SIZE, _chunk_to_uint8, _image_to_gray, luma, resize_gray
from genbench.files.safe_open import BadFile, _open_regular, _read_exact, read_regular

PIL_FORMATS = ["PNG", "JPEG", "BMP"]
# Largest image accepted, in pixels: far above any sensible sample, far below what
# would exhaust memory when decoded (PIL's own hard limit is ~179 M pixels).
PIXEL_LIMIT = 4096 * 4096
ARRAY_CHUNK_BYTES = 32 * 2**20  # rows of an array are converted this many input bytes at a time
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_PNG_GRAY, _PNG_RGB = 0, 2  # IHDR colour types that libspng decodes here (at 8 bits)
# What a damaged array file raises inside numpy's header parser or zipfile/zlib/bz2/lzma.
_ARRAY_FORMAT_ERRORS = (ValueError, EOFError, KeyError, NotImplementedError, RuntimeError, OverflowError,
                        struct.error, zipfile.BadZipFile, zipfile.LargeZipFile, zlib.error)


# -- images -------------------------------------------------------------------------

def _png_header(data: bytes) -> tuple[int, int, int, int, int] | None:
    """``(width, height, bit depth, colour type, interlace)`` from a PNG's IHDR, or None if not a PNG."""
    if len(data) < 33 or data[:8] != _PNG_SIGNATURE or data[12:16] != b"IHDR":
        return None
    width, height, depth, colour, _compression, _filter, interlace = struct.unpack(">IIBBBBB", data[16:29])
    return width, height, depth, colour, interlace


def _check_pixels(width: int, height: int, pixel_limit: int) -> None:
    if width * height > pixel_limit:
        raise BadFile(f"{width}x{height} pixels is over the limit of {pixel_limit} (decompression bomb?)")
    if width == 0 or height == 0:
        raise BadFile(f"image has no pixels ({width}x{height})")


def _decode_png_fast(data: bytes, pixel_limit: int, notes: set[str]) -> np.ndarray | None:
    """8-bit gray or RGB PNG -> ``[H,W] uint8`` gray with libspng; None for PIL to decode instead.

    libspng is faster than PIL on small images (``results/speed/README.md``) and returns the same samples
    (no gamma, no transparency applied); RGB becomes gray by :func:`luma`, PIL's own
    formula. Anything it does not decode (other modes, damage) goes to PIL, whose
    verdict then stands.
    """
    header = _png_header(data)
    if pyspng is None or header is None or header[2] != 8 or header[3] not in (_PNG_GRAY, _PNG_RGB):
        return None
    width, height = header[:2]
    _check_pixels(width, height, pixel_limit)
    colour = header[3] == _PNG_RGB
    try:
        pixels = pyspng.load(data, "RGB" if colour else "L")
    except (RuntimeError, ValueError):
        return None
    if pixels.dtype != np.uint8 or pixels.shape != ((height, width, 3) if colour else (height, width)):
        return None
    if colour:
        notes.add("gray RGB")
        return luma(torch.from_numpy(np.ascontiguousarray(pixels.transpose(2, 0, 1)))[None])[0, 0].numpy()
    return pixels


def _decode_pil(data: bytes, pixel_limit: int, notes: set[str]) -> np.ndarray:
    # DecompressionBombWarning is turned into an error by load_images (a process-wide filter).
    try:
        img = Image.open(io.BytesIO(data), formats=PIL_FORMATS)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise BadFile(f"decompression bomb refused ({exc})") from None
    except UnidentifiedImageError:
        raise BadFile("not a readable PNG/JPEG/BMP image") from None
    _check_pixels(*img.size, pixel_limit)
    try:
        img.load()
    except OSError as exc:
        raise BadFile(f"corrupt or truncated image ({exc})") from None
    return _image_to_gray(img, notes)


def _read_image(path: Path, pixel_limit: int, file_limit: int, notes: set[str]) -> np.ndarray:
    data = read_regular(path, file_limit)
    if not data:
        raise BadFile("empty file (0 bytes)")
    gray = _decode_png_fast(data, pixel_limit, notes)
    if gray is None:
        gray = _decode_pil(data, pixel_limit, notes)
    if gray.shape != (SIZE, SIZE):
        notes.add(f"resized {gray.shape[1]}x{gray.shape[0]}")
        gray = resize_gray(gray)
    return gray


@dataclass(frozen=True)
class _ArrayLayout:
    """What an array's header declares, validated before any data is read."""

    n: int
    height: int
    width: int
    dtype: np.dtype
    fortran: bool
    nbytes: int

    @property
    def row_bytes(self) -> int:
        return self.height * self.width * self.dtype.itemsize


def _array_layout(stream: BinaryIO, pixel_limit: int, array_limit: int, what: str = "") -> _ArrayLayout:
    """Parse and check a ``.npy`` header (``what`` names an npz member in messages)."""
    version = np.lib.format.read_magic(stream)
    if version == (1, 0):
        shape, fortran, dtype = np.lib.format.read_array_header_1_0(stream)
    elif version == (2, 0):
        shape, fortran, dtype = np.lib.format.read_array_header_2_0(stream)
    else:
        raise BadFile(f"{what}npy format version {version} is not read (1.0 and 2.0 are)")
    if dtype.hasobject:
        raise BadFile(f"{what}holds Python objects (object dtype); only numeric arrays are read")
    if len(shape) == 4 and shape[1] == 1:
        shape = (shape[0], shape[2], shape[3])
    if len(shape) != 3:
        raise BadFile(f"{what}array shape {shape} is not (N,H,W) or (N,1,H,W)")
    n, h, w = shape
    if n == 0 or h == 0 or w == 0:
        raise BadFile(f"{what}array shape {shape} holds no pixels")
    if h * w > pixel_limit:
        raise BadFile(f"{what}{w}x{h} pixels per image is over the limit of {pixel_limit}")
    if dtype == np.bool_ or not (np.issubdtype(dtype, np.integer) or np.issubdtype(dtype, np.floating)):
        raise BadFile(f"{what}dtype {dtype} is not accepted (uint8, integers in [0,255] or floats in [0,1])")
    nbytes = math.prod(shape) * dtype.itemsize
    if nbytes > array_limit:
        raise BadFile(f"{what}declares {shape} {dtype} ({nbytes} bytes), over the limit of {array_limit} bytes")
    return _ArrayLayout(n, h, w, dtype, fortran, nbytes)


def _convert_rows(rows: Callable[[int, int], np.ndarray], layout: _ArrayLayout, count: int,
                  notes: set[str]) -> np.ndarray:
    """uint8 ``[count,28,28]`` from ``rows(start, stop) -> [k,H,W]``, converted a bounded chunk at a time."""
    out = np.empty((count, SIZE, SIZE), np.uint8)
    if np.issubdtype(layout.dtype, np.floating):
        notes.add("float")
    step = max(1, ARRAY_CHUNK_BYTES // layout.row_bytes)
    for start in range(0, count, step):
        stop = min(start + step, count)
        chunk = _chunk_to_uint8(np.asarray(rows(start, stop)))
        if (layout.height, layout.width) != (SIZE, SIZE):
            chunk = np.stack([resize_gray(img) for img in chunk])
        out[start:stop] = chunk
    if (layout.height, layout.width) != (SIZE, SIZE):
        notes.add(f"resized {layout.width}x{layout.height}")
    return out


def _read_npy(fh: BinaryIO, pixel_limit: int, array_limit: int, max_rows: int | None,
              notes: set[str]) -> np.ndarray:
    layout = _array_layout(fh, pixel_limit, array_limit)
    offset = fh.tell()
    size = os.fstat(fh.fileno()).st_size
    if offset + layout.nbytes > size:
        raise BadFile(f"truncated: the header declares {layout.nbytes} bytes of data, {size - offset} follow")
    shape = (layout.n, layout.height, layout.width)
    data = np.memmap(fh, dtype=layout.dtype, mode="r", offset=offset, shape=shape,
                     order="F" if layout.fortran else "C")
    count = layout.n if max_rows is None else min(layout.n, max_rows)
    return _convert_rows(lambda a, b: data[a:b], layout, count, notes)


def _read_npz(fh: BinaryIO, pixel_limit: int, array_limit: int, max_rows: int | None,
              notes: set[str]) -> np.ndarray:
    with zipfile.ZipFile(fh) as zf:
        members = {name.removesuffix(".npy"): name for name in zf.namelist()}
        names = list(members)
        chosen = names[0] if len(names) == 1 else next((k for k in ("samples", "images") if k in names), None)
        if chosen is None:
            raise BadFile(f"npz holds {len(names)} arrays {names[:5]}; keep one, or name it 'samples'")
        what = f"array {chosen!r} "
        info = zf.getinfo(members[chosen])
        if info.file_size > array_limit + 2**20:  # + room for the .npy header
            raise BadFile(f"{what}unpacks to {info.file_size} bytes, over the limit of {array_limit} bytes")
        with zf.open(info) as member:
            layout = _array_layout(member, pixel_limit, array_limit, what)
            count = layout.n if max_rows is None else min(layout.n, max_rows)
            shape = (layout.n, layout.height, layout.width)
            if layout.fortran:  # leading rows are not contiguous: the whole array (within the limit)
                body = _read_exact(member, layout.nbytes)
                if len(body) < layout.nbytes:
                    raise BadFile(f"{what}is truncated")
                whole = np.frombuffer(body, layout.dtype).reshape(shape, order="F")
                return _convert_rows(lambda a, b: whole[a:b], layout, count, notes)

            def rows(start: int, stop: int) -> np.ndarray:
                body = _read_exact(member, (stop - start) * layout.row_bytes)  # rows arrive in order
                if len(body) < (stop - start) * layout.row_bytes:
                    raise BadFile(f"{what}is truncated")
                return np.frombuffer(body, layout.dtype).reshape(stop - start, layout.height, layout.width)

            return _convert_rows(rows, layout, count, notes)


def _read_array(path: Path, pixel_limit: int, array_limit: int, max_rows: int | None,
                notes: set[str]) -> np.ndarray:
    with _open_regular(path, array_limit) as fh:
        if os.fstat(fh.fileno()).st_size == 0:
            raise BadFile("empty file (0 bytes)")
        reader = _read_npz if path.name.lower().endswith(".npz") else _read_npy
        try:
            return reader(fh, pixel_limit, array_limit, max_rows, notes)
        except OSError as exc:
            if exc.errno is not None:  # a file-system error, described by the caller
                raise
            raise BadFile(f"not a readable array ({exc})") from None
        except _ARRAY_FORMAT_ERRORS as exc:
            raise BadFile(f"not a readable array ({type(exc).__name__}: {exc})") from None
