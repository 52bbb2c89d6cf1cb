"""Things computed once and kept: a memo in this process over a torch file on disk.

Reference statistics (:mod:`genbench.features.reference`), the copy check's calibration
(:mod:`genbench.metrics.copying`), the copy test's k-means cells
(:mod:`genbench.metrics.copy_test`) and tuning's validation statistics
(:mod:`genbench.tune.trial`) are each a :class:`DiskCache`. Each names its own files (by
what the value depends on: data, split, extractor weights) and writes its own blob; the
cache gives them one way to be kept:

- a memo per process, by a key the caller chooses, that holds only while the file is
  still there (deleting the file forces a recompute);
- files written atomically (:func:`genbench.files.atomic.atomic_torch_save`: a reader never
  sees half a file) and read with ``torch.load(weights_only=True)``, so a cache file can
  hold tensors and plain containers only, never code;
- a file that does not hold this cache's ``version`` and ``key`` (a dict of strings), or that
  the caller's ``decode`` finds stale (returns None), is recomputed; one that cannot be read
  at all is recomputed with a warning that names it. A cache file is never trusted over the
  data it stands for.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Hashable
from pathlib import Path
from typing import Any, Generic, TypeVar

import torch

from genbench.files.atomic import atomic_torch_save

T = TypeVar("T")


class DiskCache(Generic[T]):
    """A memo over cache files written by :func:`genbench.files.atomic.atomic_torch_save`.

    ``what`` names the cache in the warning about an unreadable file ("statistics cache");
    ``version`` is the format version a blob must hold beside its key (None: the blobs hold
    neither, the file name alone identifies them).
    """

    def __init__(self, what: str, version: int | None = None) -> None:
        self.what = what
        self.version = version
        self.memo: dict[Hashable, tuple[T, Path]] = {}  # memo key -> (value, the file it was kept in)

    def remembered(self, memo_key: Hashable) -> T | None:
        """The value this process kept under ``memo_key``, if its file is still on disk."""
        hit = self.memo.get(memo_key)
        if hit is not None and hit[1].is_file():
            return hit[0]
        return None

    def load(self, path: Path, key: dict[str, str] | None, decode: Callable[[dict[str, Any]], T | None]) -> T | None:
        """``decode(blob)`` of the file at ``path``; None when there is none, or it is stale or unreadable.

        With a ``version``, the blob must hold ``version`` and ``key`` equal to these; ``decode``
        returns None for a blob it finds stale (a shape that does not match the data).
        """
        if not path.is_file():
            return None
        try:
            blob = torch.load(path, map_location="cpu", weights_only=True)
            if self.version is not None and (blob.get("version") != self.version or dict(blob["key"]) != key):
                return None
            return decode(blob)
        except Exception as exc:  # a damaged cache file is recomputed, never trusted
            warnings.warn(f"ignoring unreadable {self.what} {path} ({type(exc).__name__}: {exc}); recomputing",
                          stacklevel=3)
            return None

    def get(
        self,
        memo_key: Hashable,
        path: Path,
        *,
        key: dict[str, str] | None,
        compute: Callable[[], T],
        encode: Callable[[T], dict[str, Any]],
        decode: Callable[[dict[str, Any]], T | None],
    ) -> T:
        """The value kept at ``path``, or ``compute()`` saved there as ``encode(value)``; remembered under ``memo_key``.

        With a ``version``, ``encode``'s blob is written with ``version`` and ``key`` added
        (first, as :meth:`load` reads them).
        """
        value = self.remembered(memo_key)
        if value is not None:
            return value
        value = self.load(path, key, decode)
        if value is None:
            value = compute()
            blob = encode(value)
            if self.version is not None:
                blob = {"version": self.version, "key": key, **blob}
            atomic_torch_save(blob, path)
        self.memo[memo_key] = (value, path)
        return value

    def clear(self) -> None:
        """Forget what this process remembered (the files stay)."""
        self.memo.clear()
