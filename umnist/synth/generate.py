"""Plan, render in worker processes, write: scenes + labels, crop shards, tables, manifest."""

import hashlib
import multiprocessing as mp
import os
from collections import Counter
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from umnist import config
from umnist.errors import UmnistError
from umnist.fileio import atomic_path, write_json, write_text, write_yaml
from umnist.labels import BACKGROUND_LABEL, NUM_CLASSES
from umnist.mnist import load_mnist
from umnist.synth.config import SynthConfig
from umnist.synth.scenes import DigitPlanner, ScenePlan, digit_mask, plan_split, render_scene
from umnist.synth.training_crops import scene_crops
from umnist.tables import BOXES_COLUMNS, SUMS_COLUMNS

SPLITS = ("train", "val")
_worker: dict = {}  # per-process state set by `_init_worker`: the config, MNIST digits, output root


def _init_worker(cfg: SynthConfig, mnist_images: np.ndarray, root: Path) -> None:
    cv2.setNumThreads(1)  # one core per worker process: the parallelism is across scenes
    _worker.update(cfg=cfg, images=mnist_images, root=root)


def _render_and_write(job: tuple[str, ScenePlan]):
    """Render one scene, write its JPEG and label file; return what the main process aggregates."""
    split, plan = job
    cfg, root = _worker["cfg"], _worker["root"]
    scene, boxes = render_scene(plan, cfg, _worker["images"])
    image_path = root / "detection" / "images" / split / f"{plan.scene_id}.jpg"
    if not cv2.imwrite(str(image_path), scene, [cv2.IMWRITE_JPEG_QUALITY, cfg.jpeg_quality]):
        raise UmnistError(f"{image_path}: could not write the scene")
    classes = list(plan.digits)
    size = cfg.scene_size
    lines = [f"{c} {(x1 + x2) / 2 / size:.6f} {(y1 + y2) / 2 / size:.6f} {(x2 - x1) / size:.6f} "
             f"{(y2 - y1) / size:.6f}\n" for c, (x1, y1, x2, y2) in zip(classes, boxes, strict=True)]
    (root / "detection" / "labels" / split / f"{plan.scene_id}.txt").write_text("".join(lines))
    crops = scene_crops(scene, boxes, classes, plan, cfg) if cfg.crop_size else None
    return split, plan.scene_id, boxes, classes, crops


class ShardWriter:
    """Writes crops to `crops/{split}/shard-{k:05d}.npz` in shards of a fixed size, as they come."""

    def __init__(self, root: Path, split: str, shard_size: int):
        self.dir = root / "crops" / split
        self.dir.mkdir(parents=True, exist_ok=True)
        self.split, self.shard_size = split, shard_size
        self.images, self.labels, self.sources, self.rows = [], [], [], []
        self.class_counts = Counter()

    def add(self, images: np.ndarray, labels, source: int) -> None:
        for image, label in zip(images, labels, strict=True):
            self.images.append(image)
            self.labels.append(label)
            self.sources.append(source)
            self.class_counts[int(label)] += 1
            if len(self.images) == self.shard_size:
                self.flush()

    def flush(self) -> None:
        if not self.images:
            return
        name = f"shard-{len(self.rows):05d}.npz"
        np.savez_compressed(self.dir / name, images=np.stack(self.images),
                            labels=np.asarray(self.labels, np.uint8), source=np.asarray(self.sources, np.uint8))
        self.rows.append((self.split, name, len(self.images)))
        self.images, self.labels, self.sources = [], [], []


def _split_mnist(labels: np.ndarray, from_test: np.ndarray, fraction: float,
                 rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Disjoint MNIST pools for train and val, stratified by class.

    The val pool (val scenes, val crops and every held-out set) is `fraction` of the MNIST-test digits alone
    when test digits are loaded: the competition drew its digits from MNIST train, so training may use all of
    them. The same test digits are held out whether MNIST train is loaded or not.
    """
    eligible = from_test if from_test.any() else np.ones_like(from_test)
    train, val = [np.flatnonzero(~eligible)], []
    for c in range(NUM_CLASSES):
        members = rng.permutation(np.flatnonzero(eligible & (labels == c)))
        cut = int(round(len(members) * fraction))
        val.append(members[:cut])
        train.append(members[cut:])
    return {"train": np.sort(np.concatenate(train)), "val": np.sort(np.concatenate(val))}


def _load_digits(mnist, splits: tuple[str, ...]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """MNIST digits and labels of `splits`, concatenated, and a mask of those from the test split."""
    loaded = [load_mnist(mnist, (split,)) for split in splits]
    from_test = np.concatenate([np.full(len(y), split == "test") for split, (_, y) in zip(splits, loaded, strict=True)])
    return np.concatenate([x for x, _ in loaded]), np.concatenate([y for _, y in loaded]), from_test


def raw_mnist_crop(digit: np.ndarray, size: int) -> np.ndarray:
    """A raw MNIST digit framed as synth frames a digit in a scene (and infer cuts one): the whole 28x28
    frame, binarised with Otsu, at size x size."""
    return digit_mask(digit, size)


class _RawMnistFeed:
    """Raw MNIST crops spread evenly over a split's scenes, so every shard (and so every batch drawn through
    the trainer's shuffle buffer) mixes synthetic and raw crops in the same proportion."""

    def __init__(self, images: np.ndarray, labels: np.ndarray, chosen: np.ndarray, scenes: int, size: int):
        self.images, self.labels, self.chosen, self.size = images, labels, chosen, size
        self.scenes, self.scenes_seen, self.given = max(scenes, 1), 0, 0

    def _take(self, upto: int) -> tuple[np.ndarray, np.ndarray]:
        batch = self.chosen[self.given:upto]
        self.given = max(self.given, upto)
        crops = [raw_mnist_crop(self.images[i], self.size) for i in batch]
        return (np.stack(crops) if crops else np.zeros((0, self.size, self.size), np.uint8)), self.labels[batch]

    def after_scene(self) -> tuple[np.ndarray, np.ndarray]:
        self.scenes_seen += 1
        return self._take(len(self.chosen) * self.scenes_seen // self.scenes)

    def rest(self) -> tuple[np.ndarray, np.ndarray]:
        return self._take(len(self.chosen))


def _balanced_mnist(pool: np.ndarray, labels: np.ndarray, cap: int | None, rng: np.random.Generator) -> np.ndarray:
    """As many instances of every class as the rarest class has in `pool`, at most `cap` (balanced crops)."""
    per_class = [rng.permutation(pool[labels[pool] == c]) for c in range(NUM_CLASSES)]
    keep = min(min(len(p) for p in per_class), cap if cap is not None else len(pool))
    return np.sort(np.concatenate([p[:keep] for p in per_class]))


def run(mnist: str | os.PathLike | None, out: str | os.PathLike, profile: str | os.PathLike | dict = "tiny", *,
        workers: int | None = None, progress: bool = True, **overrides) -> dict:
    """Generate the synthetic data set from the MNIST idx files in `mnist` (None: $UMNIST_MNIST_DIR) into `out`
    (replaced atomically when complete); return its summary, `out/manifest.json`."""
    cfg = config.resolve(SynthConfig, "synth", profile, **overrides)
    images, labels, from_test = _load_digits(mnist, cfg.mnist_splits)
    pools = _split_mnist(labels, from_test, cfg.mnist_val_fraction, np.random.default_rng(cfg.split_seed))
    rng = np.random.default_rng(cfg.seed)
    jobs = _plan(cfg, labels, pools, rng)
    with atomic_path(out) as root:
        for split in SPLITS:
            for kind in ("images", "labels"):
                (root / "detection" / kind / split).mkdir(parents=True)
        writers = {split: ShardWriter(root, split, cfg.crop_shard_size) for split in SPLITS}
        raw_chosen = {split: _balanced_mnist(pools[split], labels, cfg.mnist_crops_per_class, rng)
                      if cfg.crop_size and cfg.crops_mnist and len(pools[split]) else np.zeros(0, np.int64)
                      for split in SPLITS}
        scenes = {split: sum(1 for s, _ in jobs if s == split) for split in SPLITS}
        raw_feeds = {split: _RawMnistFeed(images, labels, raw_chosen[split], scenes[split], cfg.crop_size)
                     for split in SPLITS}
        boxes_rows, sums_rows = _render_all(cfg, images, root, jobs, writers, raw_feeds,
                                            workers or os.cpu_count() or 1, progress)
        for split in SPLITS:
            if cfg.crop_size:
                writers[split].add(*raw_feeds[split].rest(), source=1)
            writers[split].flush()
            _write_csv(root / "detection" / f"{split}_sums.csv", SUMS_COLUMNS, sums_rows[split])
            _write_csv(root / "detection" / f"{split}_boxes.csv", BOXES_COLUMNS, boxes_rows[split])
        _write_csv(root / "crops" / "index.csv", ["split", "shard", "count"],
                   [row for split in SPLITS for row in writers[split].rows])
        write_yaml(root / "detection" / "data.yaml", {
            "path": ".", "train": "images/train", "val": "images/val", "nc": NUM_CLASSES,
            "names": [str(d) for d in range(NUM_CLASSES)]})
        config.save(cfg, "synth", root, profile)
        raw_used = {split: len(raw_chosen[split]) for split in SPLITS}
        manifest = _manifest(cfg, jobs, labels, pools, writers, raw_used, len(images))
        write_json(root / "manifest.json", manifest)
    return manifest


def _plan(cfg: SynthConfig, labels: np.ndarray, pools: dict[str, np.ndarray],
          rng: np.random.Generator) -> list[tuple[str, ScenePlan]]:
    """Every scene's plan (which MNIST instances it draws), train then val, in the order they are written."""
    counts = {"train": (cfg.scenes_train, cfg.empty_train), "val": (cfg.scenes_val, cfg.empty_val)}
    jobs = []
    for split in SPLITS:
        if counts[split][0] - counts[split][1] > 0 and not len(pools[split]):
            raise UmnistError(f"mnist_val_fraction={cfg.mnist_val_fraction} leaves no MNIST digit for {split} scenes")
        planner = DigitPlanner(labels, pools[split], rng)
        jobs += [(split, plan) for plan in plan_split(split, *counts[split], planner, cfg, rng)]
    return jobs


def _render_all(cfg: SynthConfig, images: np.ndarray, root: Path, jobs, writers, raw_feeds, workers: int,
                progress: bool) -> tuple[dict[str, list], dict[str, list]]:
    """Render and write every scene (in `workers` processes), feeding its crops and a share of the raw MNIST
    crops to the shard writers as the scenes come, in order; return the box and sum rows of each split."""
    boxes_rows: dict[str, list] = {split: [] for split in SPLITS}
    sums_rows: dict[str, list] = {split: [] for split in SPLITS}
    _init_worker(cfg, images, root)
    bar = tqdm(total=len(jobs), desc="synth scenes", unit="scene", disable=not progress)
    if workers > 1:
        context = mp.get_context("fork" if "fork" in mp.get_all_start_methods() else "spawn")
        pool = context.Pool(workers, initializer=_init_worker, initargs=(cfg, images, root))
        results = pool.imap(_render_and_write, jobs, chunksize=4)
    else:
        pool, results = None, map(_render_and_write, jobs)
    try:
        for split, scene_id, boxes, classes, crops in results:
            if crops is not None:
                writers[split].add(*crops, source=0)
                writers[split].add(*raw_feeds[split].after_scene(), source=1)
            boxes_rows[split] += [(scene_id, c, *b) for c, b in zip(classes, boxes.tolist(), strict=True)]
            sums_rows[split].append((scene_id, sum(classes)))
            bar.update()
    finally:
        bar.close()
        if pool is not None:
            pool.terminate()
    return boxes_rows, sums_rows


def _write_csv(path: Path, header: list[str], rows) -> None:
    lines = [",".join(header)] + [",".join(str(v) for v in row) for row in rows]
    write_text(path, "\n".join(lines) + "\n")


def _manifest(cfg, jobs, labels, pools, writers, raw_used, mnist_total) -> dict:
    per_split = {}
    for split in SPLITS:
        plans = [plan for s, plan in jobs if s == split]
        used = [i for plan in plans for i in plan.mnist_indices]
        digits = [d for plan in plans for d in plan.digits]
        per_split[split] = {
            "scenes": len(plans),
            "empty_scenes": sum(1 for p in plans if not p.mnist_indices),
            "digits": len(used),
            "digits_per_class": np.bincount(np.asarray(digits, np.int64), minlength=10).tolist(),
            "mnist_pool": int(len(pools[split])),
            "mnist_pool_sha1": hashlib.sha1(pools[split].astype(np.int64).tobytes()).hexdigest(),
            "mnist_instances_used": len(set(used)),
            "crops": sum(n for _, _, n in writers[split].rows),
            "crops_per_class": [writers[split].class_counts[c] for c in range(NUM_CLASSES)],
            "background_crops": writers[split].class_counts[BACKGROUND_LABEL],
            "raw_mnist_crops": raw_used.get(split, 0),
        }
    return {"seed": cfg.seed, "mode": cfg.mode, "scene_size": cfg.scene_size, "mnist_digits": mnist_total,
            "splits": per_split, "config": config.to_dict(cfg)}
