import pytest
import torch

from genbench import data as gdata
from genbench.errors import DataError


def test_mnist_splits_from_shared_data(data_root):
    train = gdata.load_split("mnist", "train", data_root)
    test = gdata.load_split("mnist", "test", data_root)
    assert train.images.shape == (60_000, 1, 28, 28) and train.images.dtype == torch.uint8
    assert test.images.shape == (10_000, 1, 28, 28) and test.labels.shape == (10_000,)
    # Known first labels of the official files.
    assert train.labels[:5].tolist() == [5, 0, 4, 1, 9]
    assert test.labels[:5].tolist() == [7, 2, 1, 0, 4]
    assert torch.bincount(test.labels).tolist()[:3] == [980, 1135, 1032]


def test_fashion_mnist(data_root):
    test = gdata.load_split("fashion-mnist", "test", data_root)
    assert test.images.shape == (10_000, 1, 28, 28)
    assert torch.bincount(test.labels).tolist() == [1000] * 10


def test_root_resolution_order(monkeypatch, tmp_path):
    monkeypatch.setenv("GENBENCH_DATA", str(tmp_path / "env"))
    assert gdata.resolve_data_root(tmp_path / "arg") == tmp_path / "arg"
    assert gdata.resolve_data_root(None) == tmp_path / "env"
    monkeypatch.delenv("GENBENCH_DATA")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    assert gdata.resolve_data_root(None) == tmp_path / "cache" / "genbench" / "data"


def test_missing_data_offline_message(monkeypatch, tmp_path):
    def offline(root, dataset):
        raise OSError("Name or service not known")

    monkeypatch.setattr(gdata, "_download", offline)
    with pytest.raises(DataError) as info:
        gdata.load_split("mnist", "train", tmp_path)
    msg = str(info.value)
    assert "train-images-idx3-ubyte" in msg and "train-labels-idx1-ubyte" in msg
    assert str(tmp_path / "MNIST" / "raw") in msg
    assert "GENBENCH_DATA" in msg and "--data-root" in msg
    assert "Name or service not known" in msg


def test_unknown_dataset_lists_valid():
    with pytest.raises(DataError, match="valid: fashion-mnist, mnist"):
        gdata.load_split("cifar10", "train")


def test_truncated_file_is_a_clear_error(tmp_path):
    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for name in ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"):
        (raw / name).write_bytes(b"\x00\x00\x08\x03" + b"\x00" * 10)
    with pytest.raises(DataError, match="cannot read mnist|expected"):
        gdata.load_split("mnist", "test", tmp_path, download=False)
