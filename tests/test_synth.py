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
from umnist.synth.generate import _split_mnist, raw_mnist_crop
from umnist.synth.scenes import DigitPlanner, ScenePlan, digit_mask, largest_empty_rectangle, place_boxes, render_scene
from umnist.synth.training_crops import BACKGROUND_MAX_SHARE, background_squares, edge_points, jitter_boxes


@pytest.fixture(scope="module", params=["solution", "competition"])
def dataset(request, mnist_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp(request.param) / "data"
    synth.run(mnist_dir, out, "tiny", workers=2, progress=False, mode=request.param)
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
            # the digit's whole square bitmap: a square, and wide enough for yolov5 to keep (> 2 px)
            assert x2 - x1 == y2 - y1 >= cfg.digit_min_px
            inside[y1:y2, x1:x2] = True
        # outside the boxes only JPEG noise at background edges may differ
        assert (digits & ~inside).mean() < 0.002


def test_no_overlaps_and_sizes_within_bounds(dataset):
    cfg = load_cfg(dataset)
    high = cfg.cell_frac[1] * cfg.scene_size if cfg.mode == "solution" else cfg.scene_size
    table = np.genfromtxt(dataset / "detection" / "train_boxes.csv", delimiter=",", skip_header=1, dtype=None,
                          encoding=None)
    by_scene = {}
    for row in table:
        by_scene.setdefault(row[0], []).append([row[2], row[3], row[4], row[5]])
    for boxes in by_scene.values():
        boxes = np.array(boxes)
        sides = np.maximum(boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1])
        assert (sides <= high).all() and (sides >= cfg.digit_min_px).all()
        for i in range(len(boxes)):
            for j in range(i + 1, len(boxes)):
                a, b = boxes[i], boxes[j]
                assert min(a[2], b[2]) <= max(a[0], b[0]) or min(a[3], b[3]) <= max(a[1], b[1])


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["solution", "competition"])
def test_digit_sizes_follow_the_law_of_their_mode_at_full_size(mode):
    """'solution': the winner's cells up to half the side, so digits reach ~2000 px of 4000 and spread over the
    whole range (median ~250 px at 2560); 'competition': the V-shaped law (tiny and huge most likely)."""
    cfg = SynthConfig(mode=mode)
    low = max(cfg.digit_min_px, np.ceil(cfg.digit_min_frac * cfg.scene_size))
    high = cfg.cell_frac[1] * cfg.scene_size if mode == "solution" else cfg.scene_size
    rng = np.random.default_rng(1)
    sides = []
    for _ in range(200):
        cells = place_boxes(rng, 5, cfg)
        side = cells[:, 2] - cells[:, 0]
        assert (side == cells[:, 3] - cells[:, 1]).all()
        assert (side >= low).all() and (side <= high).all()
        assert (cells >= 0).all() and (cells <= cfg.scene_size).all()
        sides += side.tolist()
    sides = np.array(sides) * 4000 / cfg.scene_size  # in the competition's pixels
    if mode == "solution":
        assert 150 < np.median(sides) < 600 and sides.max() > 1500 and 0.01 < np.mean(sides < 50) < 0.15
    else:  # V-shaped law: small and large digits more likely than mid-sized ones
        small, middle, large = (sides < 280).sum(), ((sides > 33 * 28) & (sides < 43 * 28)).sum(), \
            (sides > 66 * 28).sum()
        assert small > middle and large > middle


@pytest.mark.parametrize("seed", range(5))
def test_largest_empty_rectangle_is_the_largest(seed):
    occupied = np.random.default_rng(seed).random((7, 9)) < 0.2
    r1, c1, r2, c2 = largest_empty_rectangle(occupied)
    brute = max((b - a) * (d - c) for a in range(7) for b in range(a + 1, 8) for c in range(9)
                for d in range(c + 1, 10) if not occupied[a:b, c:d].any())
    assert not occupied[r1:r2, c1:c2].any() and (r2 - r1) * (c2 - c1) == brute


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


@pytest.mark.parametrize("splits", [("test",), ("train", "test")])
def test_val_digits_never_in_train_and_come_from_mnist_test(splits):
    """The competition's digits are MNIST-train digits: val/held-out digits come from MNIST test alone, the
    same ones whether MNIST train is loaded or not, and training may use every MNIST-train digit."""
    rng = np.random.default_rng(3)
    test_labels = rng.integers(0, 10, 500)
    labels = np.concatenate([rng.integers(0, 10, 800), test_labels]) if "train" in splits else test_labels
    from_test = np.arange(len(labels)) >= len(labels) - len(test_labels)
    pools = _split_mnist(labels, from_test, 0.1, np.random.default_rng(0))
    assert not set(pools["train"].tolist()) & set(pools["val"].tolist())
    assert len(pools["train"]) + len(pools["val"]) == len(labels)
    assert from_test[pools["val"]].all() and 40 <= len(pools["val"]) <= 60
    assert (~from_test).sum() == (~from_test[pools["train"]]).sum()  # every train digit trains
    only_test = _split_mnist(test_labels, np.ones(500, bool), 0.1, np.random.default_rng(0))["val"]
    assert (pools["val"] - (len(labels) - 500)).tolist() == only_test.tolist()


def test_shards_mix_synthetic_and_raw_crops(mnist_dir, tmp_path):
    """Raw MNIST crops are spread over the synthetic ones, not appended after them: every shard holds both,
    in about the set's proportion, so batches mix sources."""
    out = tmp_path / "data"
    synth.run(mnist_dir, out, "tiny", progress=False, workers=1, scenes_train=60, empty_train=0, scenes_val=2,
              crop_shard_size=100)
    shares = []
    for shard in sorted((out / "crops" / "train").glob("*.npz")):
        with np.load(shard) as z:
            shares.append(z["source"].mean())
    overall = np.mean(shares)
    assert len(shares) >= 4 and all(abs(s - overall) < 0.15 for s in shares[:-1]), shares


def test_background_crops_and_jitter_change_the_crops_not_the_scenes(mnist_dir, tmp_path):
    """`crops_background` adds crops labelled 10 (no digit), about that many per digit; `crop_jitter` moves the
    digit crops; neither changes a scene's pixels or its labels."""
    common = {"progress": False, "workers": 1, "crops_mnist": False}
    plain, mixed = tmp_path / "plain", tmp_path / "mixed"
    synth.run(mnist_dir, plain, "tiny", **common)
    synth.run(mnist_dir, mixed, "tiny", crops_background=1.0, crop_jitter=0.2, **common)
    for split in ("train", "val"):
        for scene in (plain / "detection" / "images" / split).glob("*.jpg"):
            assert scene.read_bytes() == (mixed / "detection" / "images" / split / scene.name).read_bytes()

    def crops(root):
        shards = sorted((root / "crops" / "train").glob("*.npz"))
        return (np.concatenate([np.load(p)["images"] for p in shards]),
                np.concatenate([np.load(p)["labels"] for p in shards]))

    plain_images, plain_labels = crops(plain)
    mixed_images, mixed_labels = crops(mixed)
    digits = mixed_labels < 10
    assert (mixed_labels[digits] == plain_labels).all()
    assert (mixed_images[digits] != plain_images).any()  # jittered cuts
    manifest = json.loads((mixed / "manifest.json").read_text())["splits"]["train"]
    background = int((mixed_labels == 10).sum())
    assert manifest["background_crops"] == background
    assert 0.8 * manifest["digits"] <= background <= manifest["digits"] + manifest["scenes"]
    assert json.loads((plain / "manifest.json").read_text())["splits"]["train"]["background_crops"] == 0


@pytest.mark.parametrize("seed", range(3))
def test_background_squares_hold_no_digit(seed):
    rng = np.random.default_rng(seed)
    cfg = SynthConfig(mode="competition", scene_size=320, digit_min_px=12)
    digits = place_boxes(rng, 5, cfg)
    squares = background_squares(rng, digits, 50, 12, 320)
    assert len(squares) >= 40
    side = squares[:, 2] - squares[:, 0]
    assert (side == squares[:, 3] - squares[:, 1]).all() and side.min() >= 12 and side.max() <= 160
    assert (squares[:, :2] >= 0).all() and (squares[:, 2:] <= 320).all()
    for x1, y1, x2, y2 in squares:
        for a1, b1, a2, b2 in digits:
            overlap = max(0, min(x2, a2) - max(x1, a1)) * max(0, min(y2, b2) - max(y1, b1))
            assert overlap <= BACKGROUND_MAX_SHARE * min((x2 - x1) ** 2, (a2 - a1) ** 2)


def test_edge_points_are_the_shapes_outlines_outside_the_digits():
    scene = np.zeros((100, 100), np.uint8)
    scene[20:60, 30:70] = 255  # a white block: its outline is the only edge
    scene[80:90, 80:90] = 255  # inside a digit box: not an edge of the background
    points = {tuple(p) for p in edge_points(scene, np.array([[75, 75, 95, 95]]))}
    # a pixel is an edge where its right or lower neighbour differs: the block's outline, nothing else
    outline = ({(29, y) for y in range(20, 60)} | {(69, y) for y in range(20, 60)}
               | {(x, 19) for x in range(30, 70)} | {(x, 59) for x in range(30, 70)})
    assert points == outline


def test_edge_anchored_background_squares_hold_an_edge_and_no_digit():
    rng = np.random.default_rng(0)
    scene = np.zeros((320, 320), np.uint8)
    scene[:, 200:] = 255  # one vertical edge at x = 199/200
    digits = np.array([[10, 10, 60, 60]])
    edges = edge_points(scene, digits)
    anchored = background_squares(rng, digits, 100, 6, 320, edges, edge_share=1.0)
    assert len(anchored) == 100
    holds_edge = [scene[y1:y2, x1:x2].min() != scene[y1:y2, x1:x2].max() for x1, y1, x2, y2 in anchored]
    assert all(holds_edge)
    anywhere = background_squares(rng, digits, 100, 6, 320, edges, edge_share=0.0)
    assert np.mean([scene[y1:y2, x1:x2].min() != scene[y1:y2, x1:x2].max() for x1, y1, x2, y2 in anywhere]) < 0.7


def test_jittered_boxes_stay_within_the_jitter():
    rng = np.random.default_rng(0)
    boxes = np.array([[100, 100, 150, 150]] * 500)
    moved = jitter_boxes(rng, boxes, 0.1, 320)
    centre_shift = (moved[:, :2] + moved[:, 2:]) / 2 - 125
    assert np.abs(centre_shift).max() <= 5 + 1e-9 and np.abs(centre_shift).std() > 1
    assert (moved[:, 2] - moved[:, 0]).min() >= 45 - 1e-9 and (moved[:, 2] - moved[:, 0]).max() <= 55 + 1e-9
    assert (jitter_boxes(rng, boxes, 0.0, 320) == boxes).all()


def test_raw_mnist_crops_are_framed_like_scene_digits(mnist_dir):
    """A raw MNIST crop is the digit's whole frame, binarised, exactly as synth draws a digit into a scene."""
    images, _ = load_mnist(mnist_dir, ("test",))
    crop = raw_mnist_crop(images[0], 64)
    assert crop.shape == (64, 64) and set(np.unique(crop)) <= {0, 255}
    assert (crop == digit_mask(images[0], 64)).all()


def test_held_out_set_with_another_seed_keeps_the_split(mnist_dir, tmp_path):
    """A held-out set (another seed, same split_seed) draws on the same val pool: digits no training run saw."""
    args = dict(progress=False, workers=1, scenes_train=2, empty_train=0, scenes_val=2)
    manifests = [synth.run(mnist_dir, tmp_path / f"s{seed}", "tiny", seed=seed, **args)["splits"]
                 for seed in (0, 1_000_003)]
    for split in ("train", "val"):
        assert manifests[0][split]["mnist_pool_sha1"] == manifests[1][split]["mnist_pool_sha1"]
    other = synth.run(mnist_dir, tmp_path / "split", "tiny", split_seed=1, **args)
    assert other == json.loads((tmp_path / "split" / "manifest.json").read_text())
    assert other["splits"]["val"]["mnist_pool_sha1"] != manifests[0]["val"]["mnist_pool_sha1"]


@pytest.mark.parametrize("max_sum", [27, 10, 0])
def test_max_sum_bounds_every_scene(mnist_dir, tmp_path, max_sum):
    out = tmp_path / "data"
    synth.run(mnist_dir, out, "tiny", progress=False, workers=1, scenes_train=20, empty_train=0, scenes_val=0,
              crop_size=0, max_sum=max_sum)
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
    args = dict(progress=False, scenes_train=8, empty_train=1, scenes_val=2)
    synth.run(mnist_dir, tmp_path / "a", "tiny", workers=1, **args)
    synth.run(mnist_dir, tmp_path / "b", "tiny", workers=2, **args)
    synth.run(mnist_dir, tmp_path / "c", "tiny", workers=2, **{**args, "seed": 1})
    assert tree_digest(tmp_path / "a") == tree_digest(tmp_path / "b") != tree_digest(tmp_path / "c")


def test_render_is_exact_without_jpeg(mnist_dir):
    images, _ = load_mnist(mnist_dir, ("test",))
    cfg = SynthConfig(scene_size=512)
    plan = ScenePlan("x", (0, 0, 0), (0, 1, 2, 3, 4), (7, 2, 1, 0, 4))
    scene, boxes = render_scene(plan, cfg, images)
    background = BACKGROUNDS["solution"](np.random.default_rng((0, 0, 0)), cfg)
    digits = (scene ^ background) > 0
    covered = np.zeros_like(digits)
    for index, (x1, y1, x2, y2) in zip(plan.mnist_indices, boxes, strict=True):
        covered[y1:y2, x1:x2] = True
        assert ((digits[y1:y2, x1:x2] > 0) == (digit_mask(images[index], int(x2 - x1)) > 0)).all()
    assert not (digits & ~covered).any()


@pytest.mark.parametrize("overrides, message", [
    ({"scenes_train": -1}, "scenes_train=-1 must not be negative"),
    ({"empty_train": 99}, "empty_train=99 exceeds scenes_train"),
    ({"digit_min_px": 200}, "digit_min_px=200 is larger than the largest digit side"),
    ({"cell_frac": [0.5, 0.1]}, "cell_frac=.* must be"),
    ({"digits_min": 6}, "digits 6..5"),
    ({"digit_min_frac": 0.3, "digits_max": 9}, "cannot be placed without overlap"),
    ({"mode": "fancy"}, "mode='fancy' is not one of"),
    ({"jpeg_quality": 0}, "jpeg_quality=0"),
    ({"sceen_size": 10}, "unknown key"),
])
def test_impossible_configs_rejected_before_work(mnist_dir, tmp_path, overrides, message):
    with pytest.raises(UmnistError, match=message):
        synth.run(mnist_dir, tmp_path / "out", "tiny", progress=False, **overrides)
    assert not (tmp_path / "out").exists() and not list(tmp_path.iterdir())


def test_cli(mnist_dir, tmp_path, capsys):
    out = tmp_path / "data"
    assert main(["synth", "--out", str(out), "--mnist", str(mnist_dir), "--workers", "1", "--no-progress",
                 "--scenes-train", "4", "--empty-train", "0", "--scenes-val", "1"]) == 0
    assert len(list((out / "detection" / "images" / "train").glob("*.jpg"))) == 4
    assert main(["synth", "--out", str(tmp_path / "bad"), "--mnist", str(mnist_dir), "--scene-size", "-5"]) == 2
    assert "scene_size=-5 must not be negative" in capsys.readouterr().err
