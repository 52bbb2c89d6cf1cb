"""genbench.cache.DiskCache: the memo, the disk round trip, and what it refuses to trust."""

from __future__ import annotations

import warnings
from collections import Counter

import pytest
import torch

from genbench.cache import DiskCache

KEY = {"dataset": "mnist", "sha256": "ab" * 32}


class Calls:
    """compute/decode for a cache of one tensor, counting how often each runs."""

    def __init__(self) -> None:
        self.count = Counter()

    def compute(self) -> torch.Tensor:
        self.count["compute"] += 1
        return torch.arange(6, dtype=torch.float64).reshape(2, 3)

    def decode(self, blob: dict) -> torch.Tensor | None:
        self.count["decode"] += 1
        return blob["x"] if blob["x"].shape == (2, 3) else None  # another shape: stale

    def get(self, cache: DiskCache, path, key=KEY, memo_key="m") -> torch.Tensor:
        return cache.get(memo_key, path, key=key, compute=self.compute, encode=lambda x: {"x": x},
                         decode=self.decode)


@pytest.fixture
def cache():
    return DiskCache("test cache", version=3)


@pytest.fixture
def calls():
    return Calls()


def test_a_memo_hit_neither_computes_nor_reads(tmp_path, cache, calls):
    path = tmp_path / "x.pt"
    first = calls.get(cache, path)
    second = calls.get(cache, path)
    assert second is first
    assert calls.count == {"compute": 1}  # the file exists but was not read either


def test_the_memo_holds_only_while_the_file_is_there(tmp_path, cache, calls):
    path = tmp_path / "x.pt"
    calls.get(cache, path)
    path.unlink()
    assert cache.remembered("m") is None
    calls.get(cache, path)
    assert calls.count["compute"] == 2 and path.is_file()


def test_disk_round_trip_writes_version_key_and_payload_atomically(tmp_path, cache, calls):
    path = tmp_path / "stats" / "x.pt"
    path.parent.mkdir()
    value = calls.get(cache, path)
    blob = torch.load(path, weights_only=True)
    assert list(blob) == ["version", "key", "x"]
    assert blob["version"] == 3 and blob["key"] == KEY and torch.equal(blob["x"], value)
    assert [p.name for p in path.parent.iterdir()] == ["x.pt"]  # no temporary file left behind

    cache.clear()
    again = calls.get(cache, path)
    assert calls.count == {"compute": 1, "decode": 1}  # read back, not recomputed
    assert torch.equal(again, value) and again.dtype == torch.float64


def test_a_corrupt_file_is_recomputed_with_a_warning_that_names_it(tmp_path, cache, calls):
    path = tmp_path / "x.pt"
    path.write_bytes(b"not a torch file")
    with pytest.warns(UserWarning, match=r"(?s)ignoring unreadable test cache .*x\.pt .*; recomputing"):
        value = calls.get(cache, path)
    assert calls.count["compute"] == 1 and torch.equal(value, Calls().compute())
    assert torch.equal(torch.load(path, weights_only=True)["x"], value)  # the file is whole again


def test_a_file_holding_code_is_refused_not_run(tmp_path, cache, calls):
    path = tmp_path / "x.pt"
    torch.save({"version": 3, "key": KEY, "x": Counter(a=1)}, path)  # a pickled class: not weights
    with pytest.warns(UserWarning, match="ignoring unreadable test cache"):
        value = calls.get(cache, path)
    assert calls.count["compute"] == 1 and value.shape == (2, 3)


@pytest.mark.parametrize("blob", [
    {"version": 3, "key": {**KEY, "sha256": "cd" * 32}, "x": torch.zeros(2, 3)},  # another key
    {"version": 2, "key": KEY, "x": torch.zeros(2, 3)},  # another format version
    {"version": 3, "key": KEY, "x": torch.zeros(5)},  # decode finds it stale
])
def test_a_stale_file_is_recomputed_silently(tmp_path, cache, calls, blob):
    path = tmp_path / "x.pt"
    torch.save(blob, path)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        value = calls.get(cache, path)
    assert calls.count["compute"] == 1 and torch.equal(value, Calls().compute())
    assert torch.load(path, weights_only=True)["key"] == KEY


def test_without_a_version_the_blob_is_the_payload_alone(tmp_path, calls):
    cache = DiskCache("plain cache")
    path = tmp_path / "x.pt"
    value = calls.get(cache, path, key=None)
    assert list(torch.load(path, weights_only=True)) == ["x"]
    cache.clear()
    assert torch.equal(calls.get(cache, path, key=None), value) and calls.count == {"compute": 1, "decode": 1}


def test_memo_keys_are_separate(tmp_path, cache, calls):
    calls.get(cache, tmp_path / "a.pt", memo_key="a")
    calls.get(cache, tmp_path / "b.pt", memo_key="b")
    assert calls.count["compute"] == 2 and set(cache.memo) == {"a", "b"}
