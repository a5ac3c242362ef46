"""Streaming the crop set (`crops/{train,val}/shard-*.npz`, see docs/formats.md) without loading it whole.

A stream reads one shard at a time. For training it visits the shards in a fresh random order on every pass,
mixes images through a shuffle buffer and repeats forever (the trainer counts steps per epoch), so the
DataLoader workers can stay alive between epochs. Validation reads every image once, in order. With DataLoader
workers, each worker takes its own share of the shards (or of the images in each shard when there are more
workers than shards), so no image is read twice in a pass.
"""

import csv
import math
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import IterableDataset, get_worker_info

from umnist.classifier.config import ClassifierConfig
from umnist.crops import resize_square
from umnist.errors import UmnistError


@dataclass(frozen=True)
class Shard:
    path: Path
    count: int


def read_index(crops_dir: str | Path, split: str) -> list[Shard]:
    """The shards of one split listed in `crops/index.csv` (rows `split,shard,count`), checked to exist."""
    crops_dir = Path(crops_dir)
    index = crops_dir / "index.csv"
    if not index.is_file():
        raise UmnistError(f"{index}: crop index not found (is {crops_dir} a synth `crops/` folder?)")
    with index.open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    if rows and not {"split", "shard", "count"} <= set(rows[0]):
        raise UmnistError(f"{index}: needs columns split,shard,count, found {','.join(rows[0])}")
    shards = []
    for row in rows:
        if row["split"] != split:
            continue
        name = row["shard"] if row["shard"].endswith(".npz") else f"shard-{int(row['shard']):05d}.npz"
        path = crops_dir / split / name
        if not path.is_file():
            raise UmnistError(f"{index}: lists {path}, which does not exist")
        shards.append(Shard(path, int(row["count"])))
    if not shards:
        raise UmnistError(f"{index}: no shards for split '{split}'")
    return shards


def load_shard(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Images (N, H, W) uint8 and labels (N,) of one shard."""
    try:
        with np.load(path) as npz:
            images, labels = npz["images"], npz["labels"]
    except (OSError, ValueError, KeyError) as exc:
        raise UmnistError(f"{path}: not a crop shard with 'images' and 'labels' ({exc})") from None
    if images.ndim != 3 or images.dtype != np.uint8 or len(labels) != len(images):
        raise UmnistError(f"{path}: images {images.shape} {images.dtype} with {len(labels)} labels; "
                          "expected (N, H, W) uint8 and N labels")
    return images, labels.astype(np.int64)


def to_rgb(crop: np.ndarray, size: int) -> np.ndarray:
    """A square crop (H, W) / (H, W, 1) gray or (H, W, 3) colour, as (size, size, 3) uint8 RGB, resized the
    way synth cuts its crops (`umnist.crops.resize_square`)."""
    if crop.ndim == 3 and crop.shape[2] == 1:
        crop = crop[:, :, 0]
    if crop.ndim not in (2, 3) or (crop.ndim == 3 and crop.shape[2] != 3) or min(crop.shape[:2]) < 1:
        raise UmnistError(f"crop of shape {crop.shape}: expected (H, W) gray or (H, W, 3) colour")
    if crop.dtype != np.uint8:
        crop = np.clip(crop, 0, 255).astype(np.uint8)
    if crop.shape[:2] != (size, size):
        crop = resize_square(crop, size)
    return np.repeat(crop[:, :, None], 3, axis=2) if crop.ndim == 2 else crop


class CropStream(IterableDataset):
    """(image uint8 (3, S, S), label) pairs from the shards of one split.

    `train=True`: endless, shuffled, augmented, starting at pass `first_pass` (resume continues the order).
    `train=False`: one ordered pass, no augmentation.
    """

    def __init__(self, shards: list[Shard], cfg: ClassifierConfig, train: bool, first_pass: int = 0):
        self.shards, self.cfg, self.train, self.first_pass = shards, cfg, train, first_pass
        self.count = sum(s.count for s in shards)

    def _units(self, workers: int, rng: np.random.Generator | None) -> list[tuple[Shard, int, int]]:
        """(shard, part, parts): slices of work; shards are split in `parts` when workers outnumber them."""
        parts = max(1, math.ceil(workers / len(self.shards)))
        order = rng.permutation(len(self.shards)) if rng is not None else range(len(self.shards))
        return [(self.shards[i], k, parts) for i in order for k in range(parts)]

    def __iter__(self) -> Iterator[tuple[torch.Tensor, int]]:
        info = get_worker_info()
        worker, workers = (info.id, info.num_workers) if info else (0, 1)
        if not self.train:
            for crop, label in self._pass(self._units(workers, None)[worker::workers], None):
                yield self._tensor(to_rgb(crop, self.cfg.img_size)), label
            return
        from umnist.classifier.augment import train_transform

        rng = np.random.default_rng([self.cfg.seed, worker])
        augment = train_transform(self.cfg, seed=int(rng.integers(2**31)))
        buffer: list[tuple[np.ndarray, int]] = []  # raw gray crops: 16 KB each at 128 px
        for n in range(self.first_pass, 2**62):
            units = self._units(workers, np.random.default_rng([self.cfg.seed, n]))[worker::workers]
            seen = 0
            for item in self._pass(units, rng):
                seen += 1
                if len(buffer) < self.cfg.shuffle_buffer:
                    buffer.append(item)
                    continue
                i = int(rng.integers(len(buffer)))
                (crop, label), buffer[i] = buffer[i], item
                yield self._tensor(augment(image=to_rgb(crop, self.cfg.img_size))["image"]), label
            if not seen:
                return  # this worker's share is empty: end its stream rather than spin

    def _pass(self, units, rng) -> Iterator[tuple[np.ndarray, int]]:
        for shard, part, parts in units:
            images, labels = load_shard(shard.path)
            order = np.arange(part, len(images), parts)
            if rng is not None:
                rng.shuffle(order)
            for j in order:
                yield images[j], int(labels[j])

    @staticmethod
    def _tensor(image: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1)))
