"""The detector stage on real tiny data: training (stop rules, resume, time budget), detection, bad weights."""

import csv
import json
import math
import time

import cv2
import numpy as np
import pytest
import torch

from umnist import config, detector, yolo_compat
from umnist.cli import main
from umnist.detector import Detector, DetectorConfig, read_yolo_checkpoint, trained_img_size, training
from umnist.detector.training import METRICS_COLUMNS
from umnist.errors import UmnistError

pytestmark = pytest.mark.slow


def read_metrics(out):
    with (out / "metrics.csv").open() as f:
        return list(csv.DictReader(f))


def summary(out):
    return json.loads((out / "summary.json").read_text())


def test_training_writes_weights_metrics_and_config(tiny_detector, tiny_detector_data):
    rows = read_metrics(tiny_detector)
    assert [int(r["epoch"]) for r in rows] == [0, 1]
    assert list(rows[0]) == list(METRICS_COLUMNS)
    for row in rows:
        values = {k: float(v) for k, v in row.items()}
        assert all(math.isfinite(v) for v in values.values())
        assert values["obj_loss"] > 0 and values["box_loss"] > 0
        assert 0 <= values["precision"] <= 1 and 0 <= values["mAP50_95"] <= values["mAP50"] <= 1
        assert values["seconds"] > 0 and values["images_per_s"] > 0
    assert summary(tiny_detector)["stop_reason"] == "epochs_done" and summary(tiny_detector)["epochs_completed"] == 2
    speed = summary(tiny_detector)
    assert speed["images_per_s"] > 0 and speed["batch"] == 4 and speed["device"] == "cpu"
    assert speed["amp"] is False and speed["gpu_memory_peak_gb"] is None
    for name in ("best.pt", "last.pt"):
        ckpt = read_yolo_checkpoint(tiny_detector / "weights" / name)
        assert ckpt["optimizer"] is None and ckpt["epoch"] == -1  # final: EMA weights only
        assert ckpt["model"].nc == 10 and next(ckpt["model"].parameters()).dtype == torch.float16
    cfg = config.resolve(DetectorConfig, "detector", tiny_detector / "config.yaml")
    assert (cfg.epochs, cfg.img_size, cfg.obj_loss_stop) == (2, 128, 0)
    assert not list(tiny_detector_data.rglob("*.cache")), "yolov5's label caches must not land in the input data"


def test_objectness_stop_through_the_cli(tiny_detector_data, tmp_path):
    """Also the GPU-speed settings on a real run: batch auto (4 without a GPU), no deterministic algorithms."""
    out = tmp_path / "run"
    assert main(["train-detector", "--data", str(tiny_detector_data), "--out", str(out), "--epochs", "5",
                 "--obj-loss-stop", "10", "--batch", "auto", "--deterministic", "false"]) == 0
    assert summary(out)["stop_reason"] == "obj_loss_reached"
    assert summary(out)["batch"] == 4 and summary(out)["deterministic"] is False
    assert not torch.are_deterministic_algorithms_enabled()
    assert len(read_metrics(out)) == 1
    assert read_yolo_checkpoint(out / "weights" / "last.pt")["optimizer"] is None


@pytest.mark.parametrize("nominal_batch, steps", [(2, 6), (64, 3)])
def test_nominal_batch_sets_the_images_per_optimiser_step(tiny_detector_data, tmp_path, monkeypatch,
                                                          nominal_batch, steps):
    """12 scenes in batches of 2: an optimiser step per batch with a nominal batch of 2; with yolov5's 64 the
    gradients of ever more batches are summed per step (round(1 + 31 * batch / 100) during its 100-batch
    warm-up: 1, 1, 2, 2, 2, 3 batches here, so steps after batches 1, 2 and 4)."""
    counted = []
    step = torch.optim.SGD.step
    monkeypatch.setattr(torch.optim.SGD, "step", lambda self, *a, **k: counted.append(1) or step(self, *a, **k))
    detector.run(tiny_detector_data, tmp_path / "run", "tiny", epochs=1, batch=2, nominal_batch=nominal_batch,
                 obj_loss_stop=0)
    assert len(counted) == steps


def _yolov5_callbacks():
    yolo_compat.prepare()
    from yolov5.utils.callbacks import Callbacks

    return Callbacks


def test_resume_after_interruption(tiny_detector_data, tmp_path, monkeypatch):
    Callbacks = _yolov5_callbacks()
    run_hook = Callbacks.run

    def killed_after_first_checkpoint(self, hook, *args, **kwargs):
        run_hook(self, hook, *args, **kwargs)
        if hook == "on_model_save":
            raise KeyboardInterrupt

    out = tmp_path / "run"
    with monkeypatch.context() as patch:
        patch.setattr(Callbacks, "run", killed_after_first_checkpoint)
        with pytest.raises(KeyboardInterrupt):
            detector.run(tiny_detector_data, out, "tiny", epochs=3, obj_loss_stop=0)
    assert read_yolo_checkpoint(out / "weights" / "last.pt")["epoch"] == 0
    assert len(read_metrics(out)) == 1 and not (out / "summary.json").exists()
    with pytest.raises(UmnistError, match="--resume"):
        detector.run(tiny_detector_data, out, "tiny")

    resumed = detector.run(tiny_detector_data, out, resume=True)
    assert [int(r["epoch"]) for r in read_metrics(out)] == [0, 1, 2]
    assert resumed == summary(out) and resumed["stop_reason"] == "epochs_done" and resumed["epochs_completed"] == 3
    with pytest.raises(UmnistError, match="nothing to resume"):
        detector.run(tiny_detector_data, out, resume=True)


@pytest.mark.parametrize("late_at, call, epochs_done", [("on_model_save", 1, 1), ("on_train_batch_end", 1, 0)])
def test_time_budget_stops_cleanly(tiny_detector_data, tmp_path, monkeypatch, late_at, call, epochs_done):
    """The clock jumps an hour at the given yolov5 hook: after epoch 0's checkpoint, or inside it."""
    callbacks = _yolov5_callbacks()
    run_hook, calls, skipped = callbacks.run, [], [0.0]

    def hour_passes_at(self, hook, *args, **kwargs):
        run_hook(self, hook, *args, **kwargs)
        calls.append(hook)
        if hook == late_at and calls.count(hook) == call:
            skipped[0] = 3600.0

    monkeypatch.setattr(callbacks, "run", hour_passes_at)
    monkeypatch.setattr(training, "monotonic", lambda: time.monotonic() + skipped[0])
    out = tmp_path / "run"
    detector.run(tiny_detector_data, out, "tiny", epochs=100, obj_loss_stop=0, max_minutes=30)
    assert summary(out)["stop_reason"] == "time_budget" and summary(out)["epochs_completed"] == epochs_done
    assert read_yolo_checkpoint(out / "weights" / "best.pt")["optimizer"] is None
    monkeypatch.undo()
    if epochs_done:  # stopped between epochs: last.pt keeps its training state and the run can go on
        assert read_yolo_checkpoint(out / "weights" / "last.pt")["optimizer"] is not None
        detector.run(tiny_detector_data, out, resume=True, epochs=epochs_done + 1, max_minutes=None)
        assert summary(out)["stop_reason"] == "epochs_done"
        assert len(read_metrics(out)) == epochs_done + 1
    else:  # stopped inside the first epoch: the weights so far are saved, final
        assert read_yolo_checkpoint(out / "weights" / "last.pt")["optimizer"] is None
        with pytest.raises(UmnistError, match="nothing to resume"):
            detector.run(tiny_detector_data, out, resume=True)


@pytest.fixture(scope="module")
def scene(tiny_detector_data):
    """A grey val scene reduced to 128 x 96 (W x H): the tiny model's input size, not square."""
    path = tiny_detector_data / "detection" / "images" / "val" / "val_000000.jpg"
    image = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
    return cv2.resize(image, (128, 96), interpolation=cv2.INTER_AREA)


@pytest.mark.parametrize("shape", ["wide", "tall"])
def test_detect_returns_boxes_in_original_pixels(tiny_detector, scene, shape):
    """Twice as large (nearest) letterboxes to the same network input, so the boxes must be exactly twice."""
    small = scene if shape == "wide" else scene.T.copy()
    large = cv2.resize(small, None, fx=2, fy=2, interpolation=cv2.INTER_NEAREST)
    found = Detector(tiny_detector / "weights" / "best.pt", img_size=128, conf=0.0).detect([small, large], batch_size=2)
    assert 0 < len(found[0]) <= 5 and len(found[0]) == len(found[1])
    for image, det in zip((small, large), found, strict=True):
        assert det.boxes.dtype == np.float32 and det.conf.dtype == np.float32 and det.cls.dtype == np.int64
        height, width = image.shape
        assert (det.boxes[:, 0] >= 0).all() and (det.boxes[:, 2] <= width).all()
        assert (det.boxes[:, 1] >= 0).all() and (det.boxes[:, 3] <= height).all()
        assert (det.boxes[:, 2] >= det.boxes[:, 0]).all() and (det.boxes[:, 3] >= det.boxes[:, 1]).all()
        assert ((det.cls >= 0) & (det.cls <= 9)).all() and (np.diff(det.conf) <= 0).all()
    np.testing.assert_allclose(found[1].boxes, 2 * found[0].boxes, atol=1e-3)
    np.testing.assert_allclose(found[1].conf, found[0].conf, atol=1e-5)


def test_detect_grey_colour_and_path_agree(tiny_detector, scene, tmp_path):
    path = tmp_path / "scene.png"
    cv2.imwrite(str(path), scene)
    det = Detector(tiny_detector / "weights" / "best.pt", img_size=128, conf=0.0, max_det=3)
    grey, colour, from_file = det.detect([scene, np.dstack([scene] * 3), path], batch_size=3)
    assert len(grey) == 3
    for other in (colour, from_file):
        np.testing.assert_allclose(other.boxes, grey.boxes, atol=1e-3)
        np.testing.assert_array_equal(other.cls, grey.cls)


def test_detect_rejects_bad_images(tiny_detector, tmp_path):
    det = Detector.from_profile(tiny_detector / "weights" / "best.pt", "tiny", max_det=4)
    assert (det.img_size, det.conf, det.iou, det.max_det) == (128, 0.1, 0.1, 4)
    with pytest.raises(UmnistError, match="not a readable image"):
        det.detect([tmp_path / "missing.jpg"])
    with pytest.raises(UmnistError, match="uint8"):
        det.detect([np.zeros((8, 8), np.float32)])


@pytest.mark.parametrize("ckpt, size", [
    ({"opt": {"imgsz": 2560}}, 2560),                  # yolov5 >= v6 train.py: vars(opt)
    ({"opt": {"imgsz": [640, 640]}}, 640),
    ({"opt": {"img_size": [1280, 1280]}}, 1280),       # before v6: [train, test]
    ({"opt": {"weights": "x.pt"}}, None),
    ({"opt": {"imgsz": True}}, None),
    ({"opt": {"imgsz": 0}}, None),
    ({"opt": None}, None),
    ({}, None),
])
def test_trained_img_size_is_read_from_the_options(ckpt, size):
    assert trained_img_size(ckpt) == size


def test_detector_runs_at_its_training_size(tiny_detector, tmp_path, capsys):
    weights = tiny_detector / "weights" / "best.pt"
    assert trained_img_size(read_yolo_checkpoint(weights)) == 128
    assert Detector(weights).img_size == 128 and capsys.readouterr().err == ""
    assert Detector.from_profile(weights, "full").img_size == 128   # full trains at 2560: not this model
    assert Detector(weights, img_size=128).img_size == 128 and capsys.readouterr().err == ""
    assert Detector(weights, img_size=64).img_size == 64
    assert "was trained at 128 px; running it at 64 px as asked" in capsys.readouterr().err
    with pytest.raises(UmnistError, match="img_size=100 must be a multiple of the model's stride 32"):
        Detector(weights, img_size=100)
    ckpt = torch.load(weights, weights_only=False)
    del ckpt["opt"]
    torch.save(ckpt, tmp_path / "bare.pt")
    with pytest.raises(UmnistError, match="bare.pt: the checkpoint records no training image size"):
        Detector(tmp_path / "bare.pt")
    assert Detector(tmp_path / "bare.pt", img_size=96).img_size == 96
    assert "trained at an unrecorded size; running it at 96 px" in capsys.readouterr().err


def _bad_weights(kind, tiny_detector, tmp_path):
    path = tmp_path / f"{kind}.pt"
    if kind == "truncated":
        data = (tiny_detector / "weights" / "best.pt").read_bytes()
        path.write_bytes(data[: len(data) // 2])
    elif kind == "text":
        path.write_text("not weights\n")
    elif kind == "state_dict":  # what a classifier checkpoint looks like
        torch.save({"conv.weight": torch.zeros(3, 3), "fc.bias": torch.zeros(10)}, path)
    elif kind == "three_classes":
        from yolov5.models.yolo import Model

        ckpt = torch.load(tiny_detector / "weights" / "best.pt", weights_only=False)
        ckpt["model"] = Model(ckpt["model"].yaml, nc=3).half()
        torch.save(ckpt, path)
    return path


@pytest.mark.parametrize("kind, message", [
    ("missing", "not found"), ("truncated", "truncated or corrupt"), ("text", "not a readable PyTorch"),
    ("state_dict", "not a YOLOv5 checkpoint"), ("three_classes", "3 classes"),
])
def test_bad_weights_give_one_clear_line(kind, message, tiny_detector, tiny_detector_data, tmp_path):
    path = _bad_weights(kind, tiny_detector, tmp_path)
    with pytest.raises(UmnistError, match=message) as err:
        Detector(path, img_size=128)
    assert str(path) in str(err.value) and "\n" not in str(err.value)
    if kind != "three_classes":  # fine-tuning from another class count is allowed
        with pytest.raises(UmnistError, match=message):
            detector.run(tiny_detector_data, tmp_path / "run", "tiny", weights=path)



@pytest.mark.parametrize("model, img_size, gpu_gb, batch", [
    ("yolov5s", 2560, 141, 21),  # H200: 60 % of 141 GB at ~4 GB per 2560 px image
    ("yolov5s", 2560, 80, 12),   # H100
    ("yolov5s", 2560, 16, 2),    # the winner's batch on a 16 GB card
    ("yolov5s", 1280, 80, 48),
    ("yolov5s", 640, 80, 64),    # capped at yolov5's nominal batch
    ("yolov5x", 2560, 8, 1),     # never below one image
    ("yolov5s", 2560, None, 4),  # no GPU
])
def test_auto_batch_fits_the_gpu_memory(model, img_size, gpu_gb, batch):
    cfg = config.build(DetectorConfig, {"model": model, "img_size": img_size, "batch": "auto"}, "test")
    assert cfg.batch_for(None if gpu_gb is None else gpu_gb * 10**9) == batch
    assert config.build(DetectorConfig, {"batch": 3}, "test").batch_for(gpu_gb) == 3


@pytest.mark.parametrize("batch", [0, -1, "big"])
def test_bad_batch_is_refused(batch):
    with pytest.raises(UmnistError, match="batch"):
        config.build(DetectorConfig, {"batch": batch}, "test")


@pytest.mark.parametrize("objectness_only, kept", [(True, 2), (False, 1)])
def test_boxes_are_scored_by_objectness_not_by_a_weak_class(objectness_only, kept):
    """yolov5's NMS keeps a box when objectness x best class probability > conf: a digit the detector is sure
    of (objectness 0.9) but whose class it has not learned (0.08) would be dropped at conf 0.1."""
    from yolov5.utils.general import non_max_suppression

    from umnist.detector.detection import scored_by_objectness

    weak_class = [0.08] * 10
    sure_class = [0.0] * 10
    sure_class[3] = 0.95
    prediction = torch.tensor([[[50, 50, 20, 20, 0.9, *weak_class], [150, 150, 20, 20, 0.9, *sure_class]]])
    scored = scored_by_objectness(prediction) if objectness_only else prediction
    found = non_max_suppression(scored, 0.1, 0.1, agnostic=True, max_det=5)[0]
    assert len(found) == kept and found[:, 5].tolist()[-1] in (0, 3)
    assert torch.equal(prediction[0, 1, 5:].argmax(), scored[0, 1, 5:].argmax())


class _FixedModel:
    """Stands in for a YOLOv5 model: one box, given in the letterboxed input's pixels, per image."""

    def __init__(self, boxes_in_input):
        self.boxes = boxes_in_input

    def __call__(self, x):
        rows = [[*self.boxes[x.shape[-1]], 0.9, *([0.0] * 3 + [0.8] + [0.0] * 6)]]
        return (torch.tensor([rows] * x.shape[0], dtype=torch.float32),)


@pytest.mark.parametrize("height, width", [(200, 100), (120, 300), (256, 256)])
def test_each_scale_maps_boxes_back_to_the_original_pixels(height, width):
    """The box of a digit seen at 1x and at 2x (letterboxed, padded) lands on the same original pixels, so one
    NMS over both scales merges them into one box."""
    from yolov5.utils.augmentations import letterbox

    from umnist.detector.detection import Detector

    x1, y1, x2, y2 = 20.0, 30.0, 50.0, 60.0
    image = np.zeros((height, width, 3), np.uint8)
    boxes = {}
    for size in (64, 128):
        _, (gain, _), (pad_x, pad_y) = letterbox(image, size, stride=32, auto=False)
        boxes[size] = [(x1 + x2) / 2 * gain + pad_x, (y1 + y2) / 2 * gain + pad_y, (x2 - x1) * gain, (y2 - y1) * gain]
    found = object.__new__(Detector)
    found.__dict__.update(model=_FixedModel(boxes), device=torch.device("cpu"), half=False, stride=32, img_size=64,
                          sizes=[64, 128], conf=0.1, iou=0.1, max_det=5, conf_objectness=True, enlarged_max_px=64)
    for size in (64, 128):
        mapped = found._predict([image], size)[0, 0, :4].tolist()
        assert mapped == pytest.approx([35.0, 45.0, 30.0, 30.0], abs=1e-3)
    merged = found._detect_batch([image])[0]
    assert len(merged) == 1 and merged.boxes[0].tolist() == pytest.approx([x1, y1, x2, y2], abs=1e-3)
    assert merged.cls.tolist() == [3]
    found.enlarged_max_px = 20  # the 30 px box is now too big for the enlarged pass: only the 1x one counts
    assert found._predict([image], 128)[0, 0, 4] == 0 and found._predict([image], 64)[0, 0, 4] == 0.9
