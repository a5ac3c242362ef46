"""umnist.steps: image parts from directories and shard sets (local and S3), supplied weights, UI summaries."""

from types import SimpleNamespace

import numpy as np
import pytest

from tests.tables import detection, empty, table
from umnist import layout, shards, steps, storage
from umnist.errors import UmnistError

IDS = [f"img_{i:03d}" for i in range(7)]


@pytest.fixture
def image_dir(tmp_path):
    folder = tmp_path / "images"
    folder.mkdir()
    for i, image_id in enumerate(IDS):
        (folder / f"{image_id}.jpeg").write_bytes(bytes([i]) * (10 + i))
    (folder / "notes.txt").write_text("not an image")
    return folder


def source_kind(kind, image_dir, tmp_path, request):
    """The same seven images as a local directory, local shard set, S3 prefix or S3 shard set."""
    files = sorted(image_dir.glob("*.jpeg"))
    if kind == "dir":
        return image_dir
    if kind == "shards":
        shards.write_shards(files, tmp_path / "set", root=image_dir, max_files=2)
        return tmp_path / "set"
    uri = request.getfixturevalue("s3_uri")
    if kind == "s3-dir":
        return storage.upload(image_dir, uri)
    shards.write_shards(files, uri, root=image_dir, max_files=2)
    return uri


@pytest.mark.parametrize("kind", ["dir", "shards", "s3-dir", "s3-shards"])
def test_parts_cover_every_image_once(kind, image_dir, tmp_path, request):
    source = source_kind(kind, image_dir, tmp_path, request)
    parts = [steps.fetch_part(source, k, 3, tmp_path / f"part{k}") for k in range(3)]
    names = [name for part in parts for name in part]
    assert sorted(names) == [f"{i}.jpeg" for i in IDS]
    for k, part in enumerate(parts):
        assert sorted(p.name for p in (tmp_path / f"part{k}").iterdir()) == sorted(part)
        for name in part:
            index = IDS.index(name.removesuffix(".jpeg"))
            assert (tmp_path / f"part{k}" / name).read_bytes() == bytes([index]) * (10 + index)
    if kind.endswith("shards"):  # whole shards of two: part 0 holds shards 0 and 3
        assert parts[0] == ["img_000.jpeg", "img_001.jpeg", "img_006.jpeg"]


def test_more_parts_than_shards_leaves_empty_parts(image_dir, tmp_path):
    shards.write_shards(sorted(image_dir.glob("*.jpeg")), tmp_path / "set", root=image_dir, max_files=4)
    assert steps.fetch_part(tmp_path / "set", 2, 3, tmp_path / "p2") == []
    assert (tmp_path / "p2").is_dir()


@pytest.mark.parametrize("part, parts", [(3, 3), (-1, 2)])
def test_part_outside_range(part, parts, image_dir, tmp_path):
    with pytest.raises(UmnistError, match="outside"):
        steps.fetch_part(image_dir, part, parts, tmp_path / "out")


def test_no_images(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(UmnistError, match="no images"):
        steps.fetch_part(tmp_path / "empty", 0, 1, tmp_path / "out")


@pytest.mark.parametrize("kind", ["dir", "shards", "s3-shards"])
def test_fetch_named_gets_only_those(kind, image_dir, tmp_path, request):
    source = source_kind(kind, image_dir, tmp_path, request)
    got = steps.fetch_named(source, ["img_001", "img_005", "unknown"], tmp_path / "gallery")
    assert sorted(p.name for p in got.iterdir()) == ["img_001.jpeg", "img_005.jpeg"]


def test_supplied_weights_go_where_the_stage_keeps_its_weights(tmp_path):
    (tmp_path / "mine.pt").write_bytes(b"w")
    for stage in ("detector", "classifier"):
        model = SimpleNamespace(path=str(tmp_path / stage), metadata={})  # a KFP Model artifact's fields
        assert steps.supply_weights(stage, tmp_path / "mine.pt", model) == "supplied"
        assert layout.weights(stage, tmp_path / stage).read_bytes() == b"w"
        assert model.metadata["supplied"] == str(tmp_path / "mine.pt")
    with pytest.raises(UmnistError, match="not a training stage"):
        layout.weights("synth", tmp_path)


def test_last_epoch(tmp_path):
    log = tmp_path / "metrics.csv"
    log.write_text("epoch,train_loss,val_accuracy,note\n1,0.9,0.5,x\n2,0.4,0.75,y\n")
    assert steps.last_epoch(log) == {"epoch": 2.0, "train_loss": 0.4, "val_accuracy": 0.75}
    log.write_text("epoch,train_loss\n")
    assert steps.last_epoch(log) == {}
    assert steps.last_epoch(tmp_path / "stopped-in-its-first-epoch.csv") == {}


def test_concat_detections_and_wrong_ids(tmp_path):
    from umnist import postprocess

    first = table(detection("a", (0, 0, 10, 10), 3), detection("a", (20, 20, 30, 30), 4))
    second = table(empty("b"), detection("c", (0, 0, 5, 5), 9, prob=0.2))
    for i, part in enumerate((first, second)):
        part.to_parquet(tmp_path / f"p{i}.parquet")
    joined = steps.concat_detections([tmp_path / "p0.parquet", tmp_path / "p1.parquet"])
    assert list(joined["image_id"]) == ["a", "a", "b", "c"]
    postprocess.run(joined, tmp_path / "pred", "tiny")
    (tmp_path / "labels.csv").write_text("id,digit_sum\na,7\nb,1\nc,0\n")
    assert steps.wrong_ids(tmp_path / "pred", tmp_path / "labels.csv") == ["b"]


def test_score_summary():
    metrics = {"images": 4, "sum_accuracy": {"detector": 0.5, "reclassified": 0.75, "postprocessed": 1.0},
               "boxes": {"detector": {"recall": 0.9, "precision": None}, "reclassified": {"recall": 0.9,
                         "precision": 0.8}, "postprocessed": {"recall": 0.85, "precision": 0.95}}}
    summary = steps.score_summary(metrics)
    assert summary["sum_accuracy_postprocessed"] == 1.0 and summary["images"] == 4.0
    assert summary["box_recall_detector"] == 0.9 and "box_precision_detector" not in summary
    assert all(isinstance(v, float) and np.isfinite(v) for v in summary.values())
    assert "box_recall_detector" not in steps.score_summary({**metrics, "boxes": None})
    causes = {"wrong_images_with": {"missed": 3, "misread": 5}, "wrong_images_with_only": {"missed": 1, "misread": 4}}
    with_causes = steps.score_summary({**metrics, "error_causes": causes})
    assert (with_causes["wrong_with_misread"], with_causes["wrong_with_only_missed"]) == (5.0, 1.0)
    rows = [{"min_px": 0, "max_px": 16, "recall": 0.5, "precision": None},
            {"min_px": 1024, "max_px": None, "recall": 1.0, "precision": 0.25}]
    by_size = steps.score_summary({**metrics, "detection_by_size": {"detector": rows, "postprocessed": rows[1:]}})
    assert by_size["size_0_16_recall_detector"] == 0.5 and "size_0_16_precision_detector" not in by_size
    assert by_size["size_1024_up_precision_detector"] == by_size["size_1024_up_precision_postprocessed"] == 0.25
    assert "size_0_16_recall_postprocessed" not in by_size
