"""Invariants of the generated data, checked on the data itself (tiny profile, real MNIST digits)."""

import hashlib
import json

import cv2
import numpy as np
import pytest
import yaml

from umnist import synth
from umnist.cli import main
from umnist.errors import UmnistError
from umnist.mnist import load_mnist
from umnist.synth.backgrounds import BACKGROUNDS
from umnist.synth.config import SynthConfig
from umnist.synth.generate import _split_mnist
from umnist.synth.scenes import DigitPlanner, ScenePlan, place_boxes, render_scene


@pytest.fixture(scope="module", params=["solution", "competition"])
def dataset(request, mnist_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp(request.param) / "data"
    synth.run(out, "tiny", mnist=mnist_dir, workers=2, progress=False, mode=request.param)
    return out


def read_labels(path):
    text = path.read_text()
    return np.array([[float(v) for v in line.split()] for line in text.splitlines()]).reshape(-1, 5)


def load_cfg(dataset) -> SynthConfig:
    values = yaml.safe_load((dataset / "config.yaml").read_text())["synth"]
    return SynthConfig(**{k: tuple(v) if isinstance(v, list) else v for k, v in values.items()})


def test_layout_and_counts(dataset):
    cfg = load_cfg(dataset)
    for split, scenes, empty in (("train", cfg.scenes_train, cfg.empty_train), ("val", cfg.scenes_val, cfg.empty_val)):
        images = sorted((dataset / "detection" / "images" / split).glob("*.jpg"))
        labels = sorted((dataset / "detection" / "labels" / split).glob("*.txt"))
        assert len(images) == len(labels) == scenes
        assert [p.stem for p in images] == [p.stem for p in labels]
        counts = [len(read_labels(p)) for p in labels]
        assert sum(c == 0 for c in counts) == empty
        assert all(cfg.digits_min <= c <= cfg.digits_max for c in counts if c)
        for path in labels:
            if path.stat().st_size == 0:
                continue
            rows = read_labels(path)
            assert set(rows[:, 0]) <= set(range(10))
            assert (rows[:, 1:] > 0).all() and (rows[:, 1:] <= 1).all()
    data_yaml = yaml.safe_load((dataset / "detection" / "data.yaml").read_text())
    assert data_yaml["train"] == "images/train" and data_yaml["nc"] == 10 and data_yaml["path"] == "."


def test_labels_are_where_the_digit_pixels_are(dataset, mnist_dir):
    """Background recomputed from the scene's seed, XORed away: what is left must be exactly in the boxes."""
    cfg = load_cfg(dataset)
    for path in sorted((dataset / "detection" / "images" / "train").glob("*.jpg"))[:8]:
        scene = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE) > 127
        side = scene.shape[0]
        index = int(path.stem.split("_")[1])
        background = BACKGROUNDS[cfg.mode](np.random.default_rng((cfg.seed, 0, index)), cfg) > 127
        digits = scene ^ background
        rows = read_labels(dataset / "detection" / "labels" / "train" / f"{path.stem}.txt")
        inside = np.zeros_like(digits)
        for _, cx, cy, w, h in rows:
            x1, y1 = round((cx - w / 2) * side), round((cy - h / 2) * side)
            x2, y2 = round((cx + w / 2) * side), round((cy + h / 2) * side)
            box = digits[y1:y2, x1:x2]
            assert box.mean() > 0.05, f"{path.name}: box {x1, y1, x2, y2} holds almost no digit pixels"
            # tight: digit pixels reach each edge (JPEG noise aside)
            assert box[0].any() and box[-1].any() and box[:, 0].any() and box[:, -1].any()
            inside[y1:y2, x1:x2] = True
        # outside the boxes only JPEG noise at background edges may differ
        assert (digits & ~inside).mean() < 0.002


def test_no_overlaps_and_sizes_within_bounds(dataset):
    cfg = load_cfg(dataset)
    high = cfg.digit_max_frac * cfg.scene_size if cfg.mode == "solution" else cfg.scene_size
    table = np.genfromtxt(dataset / "detection" / "train_boxes.csv", delimiter=",", skip_header=1, dtype=None,
                          encoding=None)
    by_scene = {}
    for row in table:
        by_scene.setdefault(row[0], []).append([row[2], row[3], row[4], row[5]])
    for boxes in by_scene.values():
        boxes = np.array(boxes)
        sides = np.maximum(boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1])
        assert (sides <= high).all() and (sides >= 2).all()
        for i in range(len(boxes)):
            for j in range(i + 1, len(boxes)):
                a, b = boxes[i], boxes[j]
                assert min(a[2], b[2]) <= max(a[0], b[0]) or min(a[3], b[3]) <= max(a[1], b[1])


@pytest.mark.parametrize("mode", ["solution", "competition"])
def test_cells_sizes_and_no_overlap_at_full_size(mode):
    cfg = SynthConfig(mode=mode)
    low, high = max(cfg.digit_min_px, np.ceil(cfg.digit_min_frac * cfg.scene_size)), cfg.digit_max_frac * cfg.scene_size
    if mode == "competition":
        low, high = cfg.digit_min_px, cfg.scene_size
    rng = np.random.default_rng(1)
    sides = []
    for _ in range(200):
        cells = place_boxes(rng, 5, cfg)
        side = cells[:, 2] - cells[:, 0]
        assert (side == cells[:, 3] - cells[:, 1]).all()
        assert (side >= low).all() and (side <= high).all()
        assert (cells >= 0).all() and (cells <= cfg.scene_size).all()
        sides += side.tolist()
    sides = np.array(sides)
    if mode == "solution":  # uniform: every tenth of the range is hit about equally
        hist = np.histogram(sides, bins=10, range=(low, high))[0]
        assert hist.min() > 0.5 * hist.mean()
    else:  # V-shaped law: small and large digits more likely than mid-sized ones
        unit = cfg.scene_size / 4000 * 28
        small, middle, large = (sides < 10 * unit).sum(), ((sides > 33 * unit) & (sides < 43 * unit)).sum(), \
            (sides > 66 * unit).sum()
        assert small > middle and large > middle


def test_balanced_classes(dataset):
    manifest = json.loads((dataset / "manifest.json").read_text())
    for split in ("train", "val"):
        per_class = manifest["splits"][split]["digits_per_class"]
        assert max(per_class) - min(per_class) <= 1


def test_every_mnist_instance_used_in_turn(mnist_dir):
    _, labels = load_mnist(mnist_dir, ("test",))
    pool = np.random.default_rng(0).choice(len(labels), 300, replace=False)
    planner = DigitPlanner(labels, pool, np.random.default_rng(0))
    largest_class = np.bincount(labels[pool], minlength=10).max()
    drawn = [planner.next() for _ in range(10 * largest_class)]
    assert set(i for i, _ in drawn) == set(pool.tolist())
    assert all(labels[i] == c for i, c in drawn)


def test_crop_set(dataset):
    crop_size = load_cfg(dataset).crop_size
    manifest = json.loads((dataset / "manifest.json").read_text())
    index = (dataset / "crops" / "index.csv").read_text().splitlines()
    assert index[0] == "split,shard,count"
    for split in ("train", "val"):
        labels, sources = [], []
        for line in index[1:]:
            s, shard, count = line.split(",")
            if s != split:
                continue
            with np.load(dataset / "crops" / split / shard) as z:
                assert z["images"].shape == (int(count), crop_size, crop_size)
                assert z["images"].dtype == np.uint8
                labels += z["labels"].tolist()
                sources += z["source"].tolist()
        labels, sources = np.array(labels), np.array(sources)
        assert (sources == 0).sum() == manifest["splits"][split]["digits"]
        raw = np.bincount(labels[sources == 1], minlength=10)
        assert raw.min() == raw.max() > 0  # raw MNIST crops balanced per class
        synthetic = np.bincount(labels[sources == 0], minlength=10)
        assert synthetic.max() - synthetic.min() <= 1


def test_val_digits_never_in_train(mnist_dir):
    cfg = SynthConfig(scene_size=256, scenes_train=30, empty_train=0, scenes_val=10, mnist_splits=("test",))
    _, labels = load_mnist(mnist_dir, ("test",))
    pools = _split_mnist(labels, cfg.mnist_val_fraction, np.random.default_rng(0))
    assert not set(pools["train"].tolist()) & set(pools["val"].tolist())
    assert len(pools["train"]) + len(pools["val"]) == len(labels)


def test_held_out_set_with_another_seed_keeps_the_split(mnist_dir, tmp_path):
    """A held-out set (another seed, same split_seed) draws on the same val pool: digits no training run saw."""
    args = dict(mnist=mnist_dir, progress=False, workers=1, scenes_train=2, empty_train=0, scenes_val=2)
    manifests = [json.loads((synth.run(tmp_path / f"s{seed}", "tiny", seed=seed, **args) / "manifest.json")
                            .read_text())["splits"] for seed in (0, 1_000_003)]
    for split in ("train", "val"):
        assert manifests[0][split]["mnist_pool_sha1"] == manifests[1][split]["mnist_pool_sha1"]
    other = json.loads((synth.run(tmp_path / "split", "tiny", split_seed=1, **args) / "manifest.json").read_text())
    assert other["splits"]["val"]["mnist_pool_sha1"] != manifests[0]["val"]["mnist_pool_sha1"]


@pytest.mark.parametrize("max_sum", [27, 10, 0])
def test_max_sum_bounds_every_scene(mnist_dir, tmp_path, max_sum):
    out = synth.run(tmp_path / "data", "tiny", mnist=mnist_dir, progress=False, workers=1, scenes_train=20,
                    empty_train=0, scenes_val=0, crop_size=0, max_sum=max_sum)
    sums = np.loadtxt(out / "detection" / "train_sums.csv", delimiter=",", skiprows=1, usecols=1, ndmin=1)
    assert len(sums) == 20 and sums.max() <= max_sum
    if max_sum == 27:  # balanced draws give sums above 27 without the bound; it must not push all sums down
        assert sums.max() >= 20


def tree_digest(root):
    h = hashlib.sha256()
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        h.update(str(path.relative_to(root)).encode())
        h.update(path.read_bytes())
    return h.hexdigest()


def test_deterministic_whatever_the_workers(mnist_dir, tmp_path):
    args = dict(mnist=mnist_dir, progress=False, scenes_train=8, empty_train=1, scenes_val=2)
    synth.run(tmp_path / "a", "tiny", workers=1, **args)
    synth.run(tmp_path / "b", "tiny", workers=2, **args)
    synth.run(tmp_path / "c", "tiny", workers=2, **{**args, "seed": 1})
    assert tree_digest(tmp_path / "a") == tree_digest(tmp_path / "b") != tree_digest(tmp_path / "c")


def test_render_is_exact_without_jpeg(mnist_dir):
    images, _ = load_mnist(mnist_dir, ("test",))
    cfg = SynthConfig(scene_size=512)
    plan = ScenePlan("x", (0, 0, 0), (0, 1, 2, 3, 4), (7, 2, 1, 0, 4))
    scene, boxes = render_scene(plan, cfg, images)
    background = BACKGROUNDS["solution"](np.random.default_rng((0, 0, 0)), cfg)
    digits = (scene ^ background) > 0
    covered = np.zeros_like(digits)
    for x1, y1, x2, y2 in boxes:
        covered[y1:y2, x1:x2] = True
        box = digits[y1:y2, x1:x2]
        assert box[0].any() and box[-1].any() and box[:, 0].any() and box[:, -1].any()
    assert not (digits & ~covered).any()


@pytest.mark.parametrize("overrides, message", [
    ({"scenes_train": -1}, "scenes_train=-1 must not be negative"),
    ({"empty_train": 99}, "empty_train=99 exceeds scenes_train"),
    ({"digit_min_px": 200}, "digit_min_px=200 is larger than the largest digit side"),
    ({"digits_min": 6}, "digits 6..5"),
    ({"digit_min_frac": 0.3, "digits_max": 9}, "cannot be placed without overlap"),
    ({"mode": "fancy"}, "mode='fancy' is not one of"),
    ({"jpeg_quality": 0}, "jpeg_quality=0"),
    ({"sceen_size": 10}, "unknown key"),
])
def test_impossible_configs_rejected_before_work(mnist_dir, tmp_path, overrides, message):
    with pytest.raises(UmnistError, match=message):
        synth.run(tmp_path / "out", "tiny", mnist=mnist_dir, progress=False, **overrides)
    assert not (tmp_path / "out").exists() and not list(tmp_path.iterdir())


def test_cli(mnist_dir, tmp_path, capsys):
    out = tmp_path / "data"
    assert main(["synth", "--out", str(out), "--mnist", str(mnist_dir), "--workers", "1", "--no-progress",
                 "--scenes-train", "4", "--empty-train", "0", "--scenes-val", "1"]) == 0
    assert len(list((out / "detection" / "images" / "train").glob("*.jpg"))) == 4
    assert main(["synth", "--out", str(tmp_path / "bad"), "--mnist", str(mnist_dir), "--scene-size", "-5"]) == 2
    assert "scene_size=-5 must not be negative" in capsys.readouterr().err
