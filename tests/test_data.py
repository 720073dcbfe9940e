"""Datasets: real partial CIFAR-10 and MNIST from ../shared, npz handling, augmentation."""

from __future__ import annotations

import gzip
import shutil

import numpy as np
import pytest
import torch

from rb_crossclass.data import (
    AugmentedDataset,
    DatasetError,
    dataset_info,
    load_dataset,
    train_loader,
)

from conftest import CIFAR_TEST_NPZ, SHARED_DATA, needs_shared


@needs_shared
def test_cifar_partial_first_points_in_file_order():
    x, y = load_dataset(f"npz:{CIFAR_TEST_NPZ}", "test", n_examples=500)
    assert x.shape == (500, 3, 32, 32) and x.dtype == torch.float32 and y.dtype == torch.int64
    assert 0.0 <= x.min() and x.max() <= 1.0
    assert y[:10].tolist() == [3, 8, 8, 0, 6, 6, 1, 6, 3, 1]  # published first test labels
    assert torch.bincount(y, minlength=10).tolist() == [57, 41, 51, 49, 40, 48, 54, 47, 57, 56]
    raw = np.load(CIFAR_TEST_NPZ)["x"]
    assert torch.equal(x[7], torch.from_numpy(raw[7]).permute(2, 0, 1).float() / 255)


@needs_shared
def test_cifar_npz_class_names_from_the_declared_dataset_name():
    info = dataset_info(f"npz:{CIFAR_TEST_NPZ}", dataset_name="cifar10")
    assert info.num_classes == 10 and info.class_names[0] == "airplane"
    assert info.class_names[-1] == "truck" and info.shape == (3, 32, 32)
    assert info.num_classes_source == "dataset name cifar10" and not info.num_classes_inferred
    bare = dataset_info(f"npz:{CIFAR_TEST_NPZ}")  # no metadata in the file: K inferred, generic names
    assert bare.num_classes == 10 and bare.num_classes_inferred and bare.class_names[0] == "0"


@needs_shared
def test_mnist_test_from_raw_test_files_alone(tmp_path):
    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for name in ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"):
        shutil.copy(SHARED_DATA / "MNIST" / "raw" / name, raw / name)
    x, y = load_dataset("mnist", "test", n_examples=100, data_dir=tmp_path)
    assert x.shape == (100, 1, 28, 28) and y[:10].tolist() == [7, 2, 1, 0, 4, 1, 4, 9, 5, 9]
    with gzip.open(raw / "t10k-images-idx3-ubyte.gz") as f:
        first = np.frombuffer(f.read(), np.uint8, offset=16)[: 28 * 28]
    assert torch.equal(x[0, 0].flatten(), torch.from_numpy(first.copy()).float() / 255)
    with pytest.raises(DatasetError, match="train-images-idx3-ubyte"):
        load_dataset("mnist", "train", data_dir=tmp_path)


@needs_shared
def test_mnist_full_test_split():
    x, y = load_dataset("mnist", "test", data_dir=SHARED_DATA)
    assert x.shape == (10000, 1, 28, 28)
    assert torch.bincount(y).tolist() == [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]


def test_npz_layouts_and_errors(tmp_path):
    rng = np.random.default_rng(0)
    nhwc = rng.integers(0, 256, size=(5, 8, 8, 3), dtype=np.uint8)
    np.savez(tmp_path / "nhwc.npz", x=nhwc, y=np.arange(5))
    np.savez(tmp_path / "nchw.npz", x=nhwc.transpose(0, 3, 1, 2), y=np.arange(5))
    a, ya = load_dataset(f"npz:{tmp_path / 'nhwc.npz'}")
    b, yb = load_dataset(f"npz:{tmp_path / 'nchw.npz'}")
    assert a.shape == (5, 3, 8, 8) and torch.equal(a, b) and torch.equal(ya, yb)
    np.savez(tmp_path / "noy.npz", x=nhwc)
    with pytest.raises(DatasetError, match=r"noy\.npz.*'y'"):
        load_dataset(f"npz:{tmp_path / 'noy.npz'}")
    np.savez(tmp_path / "mismatch.npz", x=nhwc, y=np.arange(4))
    with pytest.raises(DatasetError, match="5 images but 'y' has 4"):
        load_dataset(f"npz:{tmp_path / 'mismatch.npz'}")
    with pytest.raises(DatasetError, match="holds 5 points, 6 were requested"):
        load_dataset(f"npz:{tmp_path / 'nhwc.npz'}", n_examples=6)
    with pytest.raises(DatasetError, match="not found"):
        load_dataset(f"npz:{tmp_path / 'absent.npz'}")
    with pytest.raises(DatasetError, match="unknown dataset"):
        load_dataset("svhn")


def test_cifar10_offline_error_says_where_to_put_files(tmp_path):
    with pytest.raises(DatasetError, match="cifar-10-batches-py"):
        load_dataset("cifar10", "test", data_dir=tmp_path, download=False)


def test_shipped_cifar10_sample_is_the_first_100_test_images():
    from rb_crossclass.data import open_split

    s = open_split("sample:cifar10", "test", 20)
    assert s.info.name == "cifar10" and s.info.num_classes == 10 and s.info.class_names[3] == "cat"
    assert s.x.shape == (20, 3, 32, 32) and s.y[:10].tolist() == [3, 8, 8, 0, 6, 6, 1, 6, 3, 1]
    full = open_split("sample:cifar10", "test")
    assert len(full.y) == 100 and torch.bincount(full.y, minlength=10).tolist() == [
        10, 6, 8, 10, 7, 8, 16, 11, 13, 11]
    if CIFAR_TEST_NPZ is not None:  # pixel for pixel the shared copy's first 100
        x, y = load_dataset(f"npz:{CIFAR_TEST_NPZ}", "test", n_examples=100)
        assert torch.equal(full.x, x) and torch.equal(full.y, y)
    with pytest.raises(DatasetError, match="sample:cifar10"):
        open_split("sample:svhn")
    with pytest.raises(DatasetError, match="holds 100 points"):
        open_split("sample:cifar10", "test", 101)


def _fake_imagenet_val(root, n_images):
    """All 1000 class folders of an ILSVRC-2012 'val' layout, with random JPEGs for the first
    ``n_images`` files of RobustBench's 5,000-image subset."""
    import json
    from importlib import resources

    from PIL import Image

    from rb_crossclass.compat import import_robustbench
    from rb_crossclass.data.benchmark import imagenet_subset_files

    import_robustbench()
    wnids = json.loads(resources.files("robustbench").joinpath(
        "helper_files/imagenet_class_to_id_map.json").read_text())
    for wnid in wnids:
        (root / "val" / wnid).mkdir(parents=True)
    files = imagenet_subset_files(n_images)
    rng = np.random.default_rng(0)
    for f in files:
        Image.fromarray(rng.integers(0, 256, (300, 280, 3), dtype=np.uint8)).save(root / "val" / f)
    return [wnids[f.split("/")[0]] for f in files]


def test_imagenet_through_robustbench_loader_and_offline_error(tmp_path):
    from rb_crossclass.data import open_split

    labels = _fake_imagenet_val(tmp_path, 3)
    s = open_split("imagenet", "test", 3, tmp_path)
    assert s.x.shape == (3, 3, 224, 224) and 0 <= s.x.min() and s.x.max() <= 1  # Res256Crop224
    assert s.y.tolist() == labels and s.info.num_classes == 1000 and s.info.class_names[0] == "tench"
    with pytest.raises(DatasetError, match="1 of the first 4 images .* cannot be downloaded"):
        open_split("imagenet", "test", 4, tmp_path)
    with pytest.raises(DatasetError, match="at most|holds 5000"):
        open_split("imagenet", "test", 5001, tmp_path)
    with pytest.raises(DatasetError, match="0 class folders|missing"):
        open_split("imagenet", "test", 2, tmp_path / "nowhere")
    with pytest.raises(DatasetError, match="only RobustBench's test subset"):
        open_split("imagenet", "train", 2, tmp_path)


def test_augmentation_is_crop_of_reflect_padding_and_flip():
    x = torch.rand(6, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    y = torch.arange(6)
    ds = AugmentedDataset(x, y, seed=3)
    padded = torch.nn.functional.pad(x, [4] * 4, mode="reflect")
    for i in range(6):
        img, label = ds[i]
        assert label == i and img.shape == (3, 32, 32)
        found = any(
            torch.equal(img, cand) or torch.equal(img, cand.flip(-1))
            for t in range(9) for s in range(9)
            for cand in [padded[i, :, t:t + 32, s:s + 32]]
        )
        assert found, "augmented image is not a crop (maybe flipped) of the reflect-padded image"
    again = AugmentedDataset(x, y, seed=3)
    assert all(torch.equal(ds[i][0], again[i][0]) for i in range(6))
    again.set_epoch(1)
    assert not all(torch.equal(ds[i][0], again[i][0]) for i in range(6))


def test_train_loader_batches_and_skips_augmentation_for_other_sizes():
    x28 = torch.rand(10, 1, 28, 28)
    loader = train_loader(x28, torch.arange(10), batch_size=4, seed=0, shuffle=False)
    first = next(iter(loader))[0]
    assert torch.equal(first, x28[:4])
    x32 = torch.rand(10, 3, 32, 32)
    batches = list(train_loader(x32, torch.arange(10), batch_size=4, seed=0))
    assert [len(b[1]) for b in batches] == [4, 4, 2]
    assert sorted(torch.cat([b[1] for b in batches]).tolist()) == list(range(10))


def test_imagenet_offline_is_one_clear_line_from_every_model_command(tmp_path, capsys):
    from rb_crossclass.cli import main

    for command in ("score", "evaluate"):
        assert main([command, "--model", "timm:resnet18", "--dataset", "imagenet", "--n-examples", "2",
                     "--data-dir", str(tmp_path), "--out", str(tmp_path / command)]) == 1
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and f"rb-crossclass {command}: error: imagenet:" in err
        assert "cannot be downloaded automatically" in err and str(tmp_path / "val") in err
