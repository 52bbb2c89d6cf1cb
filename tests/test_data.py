import pytest
import torch

from genbench.data import datasets as gdata
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
    with pytest.raises(DataError, match=r"cannot read mnist|expected"):
        gdata.load_split("mnist", "test", tmp_path, download=False)


@pytest.mark.parametrize("dataset, folder", [("mnist", "MNIST"), ("fashion-mnist", "FashionMNIST")])
def test_idx_reader_equals_torchvision(data_root, dataset, folder):
    from torchvision.datasets.mnist import read_image_file, read_label_file

    for split, prefix in (("train", "train"), ("test", "t10k")):
        ours = gdata.load_split(dataset, split, data_root)
        raw = f"{data_root}/{folder}/raw/{prefix}"
        assert torch.equal(ours.images[:, 0], read_image_file(f"{raw}-images-idx3-ubyte"))
        assert torch.equal(ours.labels, read_label_file(f"{raw}-labels-idx1-ubyte").long())


@pytest.mark.parametrize("blob, message", [
    (b"", "not an IDX file"),
    (b"\x00\x00\x0d\x03" + b"\x00" * 12, "not an IDX file"),  # float32 type code
    (b"\x00\x00\x08\x03\x00\x00", "header is truncated"),
    (b"\x00\x00\x08\x03" + (2).to_bytes(4, "big") + (28).to_bytes(4, "big") * 2 + b"\x00" * 100, "1568 bytes"),
])
def test_malformed_idx_files(tmp_path, blob, message):
    path = tmp_path / "x-idx3-ubyte"
    path.write_bytes(blob)
    with pytest.raises(ValueError, match=message):
        gdata.read_idx(path, 3)
