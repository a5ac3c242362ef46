import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from umnist.classifier.config import ClassifierConfig
from umnist.classifier.data import CropStream, load_shard, read_index, to_rgb
from umnist.errors import UmnistError

CFG = ClassifierConfig(img_size=32, shuffle_buffer=64, seed=3)


def _labels(shards) -> list[int]:
    return [int(y) for s in shards for y in load_shard(s.path)[1]]


@pytest.mark.parametrize("workers, n_shards", [(0, None), (2, None), (2, 1)])
def test_val_pass_reads_every_image_once(tiny_crops, workers, n_shards):
    shards = read_index(tiny_crops, "val")[:n_shards]
    loader = DataLoader(CropStream(shards, CFG, train=False), batch_size=50, num_workers=workers)
    labels = [int(y) for _, batch in loader for y in batch]
    assert len(labels) == sum(s.count for s in shards)
    assert sorted(labels) == sorted(_labels(shards))
    if workers == 0:
        assert labels == _labels(shards)


def test_train_stream_is_endless_shuffled_and_augmented(tiny_crops):
    shards = read_index(tiny_crops, "val")
    stream = CropStream(shards, CFG, train=True)
    items = [item for _, item in zip(range(3 * stream.count), stream, strict=False)]
    assert len(items) == 3 * stream.count
    image, label = items[0]
    assert image.shape == (3, 32, 32) and image.dtype == torch.uint8
    labels = [y for _, y in items[:stream.count]]
    assert labels != _labels(shards)
    assert np.bincount(labels, minlength=10).min() > 0.5 * stream.count / 10


def test_index_errors(tiny_crops, tmp_path):
    with pytest.raises(UmnistError, match="crop index not found"):
        read_index(tmp_path, "train")
    (tmp_path / "index.csv").write_text("split,shard,count\ntrain,shard-00000.npz,5\n")
    with pytest.raises(UmnistError, match="does not exist"):
        read_index(tmp_path, "train")
    with pytest.raises(UmnistError, match="no shards for split 'val'"):
        read_index(tmp_path, "val")


@pytest.mark.parametrize("shape", [(128, 128), (7, 7), (300, 300, 1), (50, 50, 3), (32, 32)])
def test_to_rgb(shape):
    crop = np.random.default_rng(0).integers(0, 256, shape, dtype=np.uint8)
    out = to_rgb(crop, 32)
    assert out.shape == (32, 32, 3) and out.dtype == np.uint8
    if len(shape) == 2 or shape[2] == 1:
        assert np.array_equal(out[:, :, 0], out[:, :, 2])
    if shape[:2] == (32, 32) and len(shape) == 2:
        assert np.array_equal(out[:, :, 1], crop)
