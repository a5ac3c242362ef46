"""infer and predict on tiny scenes with the tiny-profile models: files, formats, ids, policies, resume."""

import json

import cv2
import numpy as np
import pandas as pd
import pytest
import torch
import yaml
from test_formats_doc import documented_names

from umnist import infer
from umnist.cli import main
from umnist.errors import UmnistError

DOCUMENTED = ["image_id", "empty", "x1", "y1", "x2", "y2", "det_conf", "det_class", "cls_digit", "cls_prob",
              *[f"p{d}" for d in range(10)], "width", "height", "error"]


@pytest.fixture(scope="module")
def models(tiny_detector, tiny_classifier):
    return tiny_detector / "weights" / "best.pt", tiny_classifier[0] / "best.pt"


@pytest.fixture(scope="module")
def profile(tmp_path_factory):
    """The tiny profile with the detector's confidence floor at zero, so every image yields boxes to check."""
    data = yaml.safe_load(open("configs/tiny.yaml"))
    data["detector"]["conf"] = 0.0
    data["infer"] = {"batch_images": 2, "chunk_images": 3}
    path = tmp_path_factory.mktemp("profile") / "tiny0.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


@pytest.fixture
def images(tiny_data, tmp_path):
    """The val scenes plus the same scene as a non-square colour PNG, an RGBA PNG and a 16-bit PNG."""
    folder = tmp_path / "images"
    folder.mkdir()
    for path in sorted((tiny_data / "detection" / "images" / "val").glob("*.jpg")):
        (folder / f"{path.stem}.jpeg").write_bytes(path.read_bytes())
    scene = cv2.imread(str(next(folder.glob("*.jpeg"))), cv2.IMREAD_GRAYSCALE)
    wide = cv2.resize(scene, (300, 180))
    cv2.imwrite(str(folder / "colour.png"), cv2.cvtColor(wide, cv2.COLOR_GRAY2BGR))
    cv2.imwrite(str(folder / "rgba.png"), cv2.cvtColor(scene, cv2.COLOR_GRAY2BGRA))
    cv2.imwrite(str(folder / "deep.png"), scene.astype(np.uint16) * 257)
    return folder


def test_table_has_a_row_for_every_image_in_the_documented_format(models, profile, images, tmp_path):
    summary = infer.run(images, *models, tmp_path / "out", profile, progress=False)
    table = pd.read_parquet(tmp_path / "out" / "detections.parquet")
    assert list(table.columns) == DOCUMENTED
    ids = {p.stem for p in images.iterdir()}
    assert set(table["image_id"]) == ids
    sizes = table.groupby("image_id")[["width", "height"]].first()
    assert tuple(sizes.loc["colour"]) == (300, 180) and tuple(sizes.loc["deep"]) == (256, 256)
    found = table.loc[~table["empty"]]
    assert len(found) == 5 * len(ids)  # confidence floor 0: max_det boxes everywhere
    assert summary == {"images": len(ids), "detections": len(found), "skipped_images": {},
                       "speed": json.loads((tmp_path / "out" / "infer_stats.json").read_text())}
    assert (found["x1"] >= 0).all() and (found["x2"] <= found["width"]).all() and (found["x1"] < found["x2"]).all()
    assert (found["y1"] >= 0).all() and (found["y2"] <= found["height"]).all() and (found["y1"] < found["y2"]).all()
    probs = found[[f"p{d}" for d in range(10)]].to_numpy()
    assert np.allclose(probs.sum(axis=1), 1, atol=1e-4)
    assert (found["cls_digit"].to_numpy() == probs.argmax(axis=1)).all()
    assert np.allclose(found["cls_prob"], probs.max(axis=1))
    assert (table["error"] == "").all()
    saved = yaml.safe_load((tmp_path / "out" / "config.yaml").read_text())
    assert saved["infer"]["chunk_images"] == 3 and not (tmp_path / "out" / ".chunks").exists()


def test_empty_images_keep_their_id(models, images, tmp_path):
    cv2.imwrite(str(images / "blank.png"), np.zeros((256, 256), np.uint8))
    infer.run(images, *models, tmp_path / "out", "tiny", progress=False)
    table = pd.read_parquet(tmp_path / "out" / "detections.parquet")
    assert table["image_id"].nunique() == len(list(images.iterdir()))
    empty = table.loc[table["empty"]]
    assert (empty["det_class"] == -1).all() and empty["x1"].isna().all()


def test_bad_image_is_skipped_and_recorded_or_fatal(models, profile, images, tmp_path):
    (images / "broken.jpeg").write_bytes((images / "val_000000.jpeg").read_bytes()[:300])
    summary = infer.run(images, *models, tmp_path / "skip", profile, progress=False)
    table = pd.read_parquet(tmp_path / "skip" / "detections.parquet")
    broken = table.loc[table["image_id"] == "broken"]
    assert len(broken) == 1 and broken["empty"].all() and "broken.jpeg" in broken["error"].iloc[0]
    assert summary["skipped_images"] == {"broken": broken["error"].iloc[0]}
    with pytest.raises(UmnistError, match="broken.jpeg: not a readable image"):
        infer.run(images, *models, tmp_path / "fail", profile, progress=False, bad_images="fail")
    assert not (tmp_path / "fail" / "detections.parquet").exists()


def test_resume_redoes_only_the_unfinished_parts(models, profile, images, tmp_path, monkeypatch):
    calls = []
    original = infer.Models.__call__

    def interrupted(self, batch, classify_batch):
        calls.append(len(batch))
        if sum(calls) > 4:  # parts hold 3 images: the first is written, the second is not
            raise KeyboardInterrupt
        return original(self, batch, classify_batch)

    monkeypatch.setattr(infer.Models, "__call__", interrupted)
    with pytest.raises(KeyboardInterrupt):
        infer.run(images, *models, tmp_path / "out", profile, progress=False)
    assert [p.name for p in (tmp_path / "out" / ".chunks").iterdir()] == ["chunk-00000.parquet"]
    assert not (tmp_path / "out" / "detections.parquet").exists()
    calls.clear()
    monkeypatch.setattr(infer.Models, "__call__", lambda self, b, c: calls.append(len(b)) or original(self, b, c))
    summary = infer.run(images, *models, tmp_path / "out", profile, resume=True, progress=False)
    table = pd.read_parquet(tmp_path / "out" / "detections.parquet")
    total = len(list(images.iterdir()))
    assert sum(calls) == total - 3 and summary["speed"]["images"] == total - 3 and summary["images"] == total
    assert table.groupby("image_id").size().eq(5).all() and table["image_id"].nunique() == total


def test_parts_split_the_images(models, images, tmp_path):
    ids = []
    for part in range(2):
        infer.run(images, *models, tmp_path / f"s{part}", "tiny", progress=False, part=part, parts=2)
        ids.append(set(pd.read_parquet(tmp_path / f"s{part}" / "detections.parquet")["image_id"]))
    assert not ids[0] & ids[1] and ids[0] | ids[1] == {p.stem for p in images.iterdir()}


@pytest.mark.parametrize("make, message", [
    (lambda d: None, "no images"),
    (lambda d: [(d / "a.jpg").write_bytes(b"x"), (d / "a.png").write_bytes(b"x")], "two images share the id 'a'"),
])
def test_image_folder_errors(make, message, tmp_path):
    make(tmp_path)
    with pytest.raises(UmnistError, match=message):
        infer.list_images(tmp_path)


@pytest.fixture(scope="module")
def detector_96(models, tmp_path_factory):
    """The tiny detector as if trained at 96 px (its recorded training size): neither the tiny nor the full
    profile's detector img_size."""
    ckpt = torch.load(models[0], weights_only=False)
    ckpt["opt"]["imgsz"] = 96
    path = tmp_path_factory.mktemp("detector96") / "best.pt"
    torch.save(ckpt, path)
    return path


@pytest.mark.parametrize("profile, asked, runs_at", [
    ("tiny", None, 96),     # the default profile's detector img_size is 128
    ("full", None, 96),     # 2560
    ("tiny", 96, 96),       # asked for the training size: no warning
    ("full", 128, 128),     # asked for another: used, with a warning
])
def test_models_run_at_the_size_their_checkpoints_record(models, detector_96, images, tmp_path, capsys, profile,
                                                         asked, runs_at):
    for extra in ("colour.png", "rgba.png", "deep.png"):
        (images / extra).unlink()
    infer.run(images, detector_96, models[1], tmp_path / "out", profile, progress=False, img_size=asked)
    saved = yaml.safe_load((tmp_path / "out" / "config.yaml").read_text())
    assert saved["_infer"]["detector_img_size"] == saved["detector"]["img_size"] == runs_at
    assert saved["_infer"]["detector_trained_img_size"] == 96
    assert saved["_infer"]["classifier_img_size"] == 32           # the tiny classifier's meta, in any profile
    warned = "was trained at 96 px; running it at 128 px as asked" in capsys.readouterr().err
    assert warned == (runs_at != 96)


def test_predict_cli_override_warns(models, tiny_data, tmp_path, capsys):
    images = tiny_data / "detection" / "images" / "val"
    assert main(["predict", "--detector", str(models[0]), "--classifier", str(models[1]), "--images", str(images),
                 "--out", str(tmp_path / "out"), "--no-progress", "--img-size", "64"]) == 0
    assert "detector " + str(models[0]) + " was trained at 128 px; running it at 64 px" in capsys.readouterr().err
    assert yaml.safe_load((tmp_path / "out" / "config.yaml").read_text())["_infer"]["detector_img_size"] == 64
    assert main(["predict", "--detector", str(models[0]), "--classifier", str(models[1]), "--images", str(images),
                 "--out", str(tmp_path / "bad"), "--img-size", "100"]) == 2
    assert "img_size=100 must be a multiple of 32" in capsys.readouterr().err


def test_predict_cli_writes_submission_metrics_and_report(models, tiny_data, tmp_path, capsys):
    images = tiny_data / "detection" / "images" / "val"
    labels = tiny_data / "detection" / "val_sums.csv"
    boxes = tiny_data / "detection" / "val_boxes.csv"
    out = tmp_path / "out"
    assert main(["predict", "--detector", str(models[0]), "--classifier", str(models[1]), "--images", str(images),
                 "--out", str(out), "--labels", str(labels), "--boxes", str(boxes), "--no-progress"]) == 0
    printed, errors = capsys.readouterr()
    assert "sum accuracy on 6 images: detector" in printed and "report.html" in printed
    assert "warning" not in errors
    submission = pd.read_csv(out / "submission.csv")
    assert list(submission.columns) == ["id", "digit_sum"]
    assert list(submission["id"]) == sorted(p.stem for p in images.glob("*.jpg"))
    assert submission["digit_sum"].between(0, 27).all()
    for name in ("detections.parquet", "detections_filtered.parquet", "metrics.json", "report.html",
                 "config.yaml", "infer_stats.json"):
        assert (out / name).is_file(), name
    stats = json.loads((out / "infer_stats.json").read_text())
    assert stats["images"] == len(submission) and set(stats) <= documented_names("infer")
    saved = yaml.safe_load((out / "config.yaml").read_text())
    assert {"infer", "detector", "postprocess"} <= set(saved)
    assert (saved["_infer"]["detector_img_size"], saved["_infer"]["classifier_img_size"]) == (128, 32)


def test_predict_without_a_profile_runs_the_settings_the_detector_records(tiny_detector_data, models, tiny_data,
                                                                          tmp_path, capsys):
    """A detector trained with a profile records its detector, infer and postprocess sections in its final
    weights; predict and infer without --profile run with them (a cpu-profile detector run at tiny's single
    scale misses most small digits), an explicit profile still wins, and weights that record nothing fall back
    to tiny with a note."""
    from umnist import config, detector
    from umnist.detector.checkpoint import PROFILE_KEY, read_yolo_checkpoint, recorded_profile

    changed = config.resolve_all("tiny")
    changed["detector"].update(scales=[1.0, 2.0], conf=0.05)
    changed["infer"]["chunk_images"] = 2
    changed["postprocess"]["min_prob"] = 0.3
    trained = tmp_path / "detector"
    detector.run(tiny_detector_data, trained, {"_profile": "changed", **changed}, epochs=1, obj_loss_stop=0)
    for name in ("best.pt", "last.pt"):
        recorded = recorded_profile(read_yolo_checkpoint(trained / "weights" / name))
        assert set(recorded) == {"_profile", "detector", "infer", "postprocess"}
        assert recorded["detector"]["scales"] == [1.0, 2.0] and recorded["detector"]["conf"] == 0.05
        assert recorded["infer"]["chunk_images"] == 2 and recorded["postprocess"]["min_prob"] == 0.3
    weights = trained / "weights" / "best.pt"
    images = tiny_data / "detection" / "images" / "val"
    command = ["predict", "--detector", str(weights), "--classifier", str(models[1]), "--images", str(images),
               "--no-progress"]
    assert main([*command, "--out", str(tmp_path / "recorded")]) == 0
    saved = config.load_profile(tmp_path / "recorded" / "config.yaml")
    assert saved["_profile"] == f"changed, as recorded in {weights}"
    assert (saved["detector"]["scales"], saved["detector"]["conf"]) == ([1.0, 2.0], 0.05)
    assert (saved["infer"]["chunk_images"], saved["postprocess"]["min_prob"]) == (2, 0.3)
    assert main([*command, "--out", str(tmp_path / "told"), "--profile", "tiny"]) == 0
    told = config.load_profile(tmp_path / "told" / "config.yaml")
    assert (told["detector"]["scales"], told["postprocess"]["min_prob"]) == ([1.0], 0.45)
    # postprocess alone on infer's folder takes the floor infer recorded there
    infer.run(images, weights, models[1], tmp_path / "infer", progress=False)
    assert main(["postprocess", "--detections", str(tmp_path / "infer"), "--out", str(tmp_path / "pp")]) == 0
    assert config.load_profile(tmp_path / "pp" / "config.yaml")["postprocess"]["min_prob"] == 0.3
    capsys.readouterr()
    ckpt = torch.load(weights, weights_only=False)
    del ckpt[PROFILE_KEY]
    torch.save(ckpt, tmp_path / "foreign.pt")
    infer.run(images, tmp_path / "foreign.pt", models[1], tmp_path / "foreign", progress=False)
    assert "foreign.pt records no settings to run with; using profile tiny" in capsys.readouterr().err
    assert config.load_profile(tmp_path / "foreign" / "config.yaml")["detector"]["scales"] == [1.0]

