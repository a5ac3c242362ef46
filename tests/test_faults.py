"""Faults: a real `python -m umnist` process killed with SIGKILL part-way, then `--resume`.

Training (detector and classifier) is killed once its first checkpoint exists, i.e. inside a later epoch, and
must end with the configured number of epochs, each exactly once in metrics.csv. Inference is killed after
its first chunk file and must redo only the missing chunks, ending with the same table as an uninterrupted run.
The object-store outages are in tests/test_storage.py (server killed mid-transfer).
"""

import csv
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from umnist.cli import main
from umnist.detector import read_yolo_checkpoint

pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parent.parent


def kill_when(argv: list[str], ready: Callable[[], bool], log: Path, timeout: float = 300) -> None:
    """Run `python -m umnist *argv` and SIGKILL its whole process group as soon as `ready()` holds."""
    with log.open("w") as out:
        proc = subprocess.Popen([sys.executable, "-m", "umnist", *argv], stdout=out, stderr=subprocess.STDOUT,
                                env={**os.environ, "PYTHONPATH": str(REPO)}, start_new_session=True)
    deadline = time.monotonic() + timeout
    try:
        while not ready():
            assert proc.poll() is None, f"it ended before it could be killed:\n{log.read_text()[-2000:]}"
            assert time.monotonic() < deadline, "not ready in time"
            time.sleep(0.01)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    assert proc.returncode == -signal.SIGKILL, log.read_text()[-2000:]


def epochs_in(metrics_csv: Path) -> list[int]:
    with metrics_csv.open() as f:
        return [int(row["epoch"]) for row in csv.DictReader(f)]


def test_detector_killed_mid_epoch_resumes_to_the_same_epochs(tiny_detector_data, tmp_path):
    out = tmp_path / "run"
    last = out / "weights" / "last.pt"
    kill_when(["train-detector", "--data", str(tiny_detector_data), "--out", str(out), "--epochs", "4"],
              last.is_file, tmp_path / "log")
    killed_at = read_yolo_checkpoint(last)["epoch"]
    assert 0 <= killed_at < 3 and not (out / "summary.json").exists()
    assert main(["train-detector", "--data", str(tiny_detector_data), "--out", str(out), "--resume"]) == 0
    assert epochs_in(out / "metrics.csv") == [0, 1, 2, 3]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["epochs_completed"] == 4 and summary["stop_reason"] == "epochs_done"
    assert read_yolo_checkpoint(last)["optimizer"] is None  # final weights


def test_classifier_killed_mid_epoch_resumes_to_the_same_epochs(tiny_crops, tmp_path):
    out = tmp_path / "run"
    kill_when(["train-classifier", "--crops", str(tiny_crops), "--out", str(out), "--epochs", "4",
               "--epoch-images", "1280"], (out / "last.pt").is_file, tmp_path / "log")
    killed_at = torch.load(out / "last.pt", weights_only=True)["resume"]["epoch"]
    assert 1 <= killed_at < 4 and not (out / "summary.json").exists()
    assert main(["train-classifier", "--crops", str(tiny_crops), "--out", str(out), "--resume"]) == 0
    assert epochs_in(out / "metrics.csv") == [1, 2, 3, 4]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["epochs_done"] == 4 and summary["stop_reason"] == "epochs"


def test_infer_killed_after_a_chunk_redoes_only_the_missing_chunks(tiny_data, tiny_detector, tiny_classifier,
                                                                   tmp_path):
    images = tmp_path / "images"
    images.mkdir()
    scenes = sorted((tiny_data / "detection" / "images").rglob("*.jpg"))
    for i in range(40):
        shutil.copy(scenes[i % len(scenes)], images / f"img{i:03d}.jpeg")
    models = ["--detector", str(tiny_detector / "weights" / "best.pt"),
              "--classifier", str(tiny_classifier[0] / "best.pt"), "--chunk-images", "2", "--no-progress"]
    out = tmp_path / "out"
    kill_when(["infer", "--images", str(images), "--out", str(out), *models],
              lambda: any((out / ".chunks").glob("chunk-*.parquet")), tmp_path / "log")
    finished = len(list((out / ".chunks").glob("chunk-*.parquet")))
    assert 1 <= finished < 20 and not (out / "detections.parquet").exists()

    assert main(["infer", "--images", str(images), "--out", str(out), "--resume", *models]) == 0
    assert json.loads((out / "infer_stats.json").read_text())["images"] == 40 - 2 * finished
    assert not (out / ".chunks").exists()
    resumed = pd.read_parquet(out / "detections.parquet")
    assert sorted(resumed["image_id"].unique()) == [f"img{i:03d}" for i in range(40)]
    assert not resumed.loc[resumed["empty"], "image_id"].duplicated().any()

    assert main(["infer", "--images", str(images), "--out", str(tmp_path / "whole"), *models]) == 0
    pd.testing.assert_frame_equal(resumed, pd.read_parquet(tmp_path / "whole" / "detections.parquet"))


class _Killed(BaseException):
    """Stands for SIGKILL in-process: not an Exception, so no handler of the code under test catches it."""


class _StopAfterWrites:
    """Stands in for os.replace (every output is written to a temporary name, then renamed): records each
    renamed file's name and raises _Killed right after the `after`-th rename since `arm` (0: never)."""

    def __init__(self):
        self.names, self.after, self._replace = [], 0, os.replace

    def __call__(self, src, dst):
        self._replace(src, dst)
        self.names.append(Path(dst).name)
        if len(self.names) == self.after:
            raise _Killed

    def arm(self, after: int) -> None:
        self.names.clear()
        self.after = after


@pytest.fixture
def stop_after_writes(monkeypatch) -> _StopAfterWrites:
    stopper = _StopAfterWrites()
    monkeypatch.setattr(os, "replace", stopper)
    return stopper


def test_classifier_killed_after_any_write_resumes_to_the_same_run(mnist_dir, tmp_path, stop_after_writes):
    """Every window, not the one a timed kill happens to hit: the run is stopped right after its k-th file
    rename (every output is written to a temporary name and renamed), for every k, then resumed. Each time
    metrics.csv ends with every epoch once, and best.pt, confusion.csv and summary.json agree."""
    from umnist import classifier, synth

    # A few dozen crops: each of the ~2 x 12 runs below takes a second or two.
    synth.run(mnist_dir, tmp_path / "data", "tiny", workers=1, progress=False, scenes_train=8, empty_train=0,
              scenes_val=3, crops_mnist=False)
    tiny_crops = tmp_path / "data" / "crops"
    args = {"epochs": 3, "epoch_images": 64, "lr_steps": [3e-3]}
    stop_after_writes.arm(0)  # count the trainer's writes only, not synth's
    classifier.run(tiny_crops, tmp_path / "whole", "tiny", **args)
    writes = list(stop_after_writes.names)
    assert writes.count("last.pt") == 3 and writes[-1] == "summary.json"
    for kill_after in range(1, len(writes)):
        out = tmp_path / f"killed-after-{kill_after}"
        stop_after_writes.arm(kill_after)
        with pytest.raises(_Killed):
            classifier.run(tiny_crops, out, "tiny", **args)
        stop_after_writes.arm(0)
        resumable = (out / "last.pt").is_file()
        summary = classifier.run(tiny_crops, out, "tiny", resume=resumable, **({} if resumable else args))
        assert epochs_in(out / "metrics.csv") == [1, 2, 3], f"killed after {writes[kill_after - 1]}"
        best = torch.load(out / "best.pt", weights_only=True)["meta"]
        assert best["epoch"] == summary["best_epoch"] and best["val_accuracy"] == summary["best_val_accuracy"]
        confusion = np.loadtxt(out / "confusion.csv", delimiter=",", skiprows=1, dtype=int)[:, 1:]
        assert np.trace(confusion) / confusion.sum() == pytest.approx(summary["best_val_accuracy"])


def test_detector_killed_around_its_final_saves_resumes_to_a_finished_run(tiny_detector_data, tmp_path,
                                                                          stop_after_writes):
    """The windows at the end of a detector run: after the last epoch's checkpoint, after last.pt is made
    final and after best.pt is: `--resume` must end each with final weights and a summary of every epoch."""
    from umnist import detector

    args = {"epochs": 2, "obj_loss_stop": 0}
    detector.run(tiny_detector_data, tmp_path / "whole", "tiny", **args)
    writes = list(stop_after_writes.names)
    final_epoch = len(writes) - writes[::-1].index("metrics.csv")  # writes up to the last epoch's metrics row
    assert writes[-3:] == ["last.pt", "best.pt", "summary.json"], writes
    for kill_after in range(final_epoch, len(writes)):
        out = tmp_path / f"killed-after-{kill_after}"
        stop_after_writes.arm(kill_after)
        with pytest.raises(_Killed):
            detector.run(tiny_detector_data, out, "tiny", **args)
        stop_after_writes.arm(0)
        summary = detector.run(tiny_detector_data, out, resume=True)
        assert epochs_in(out / "metrics.csv") == [0, 1], f"killed after write {kill_after} of {writes}"
        assert summary == json.loads((out / "summary.json").read_text())
        assert summary["epochs_completed"] == 2 and summary["stop_reason"] == "epochs_done"
        for name in ("last.pt", "best.pt"):
            assert read_yolo_checkpoint(out / "weights" / name)["optimizer"] is None


def test_infer_stopped_after_any_write_resumes_without_redoing_images(tiny_data, tiny_detector, tiny_classifier,
                                                                     tmp_path, stop_after_writes):
    """infer stopped right after each of its file renames (chunks, stats, configs, the result), then resumed:
    the table equals an uninterrupted run's, and no image finished before the stop is inferred again."""
    from umnist import infer

    images = tmp_path / "images"
    images.mkdir()
    for i, scene in enumerate(sorted((tiny_data / "detection" / "images").rglob("*.jpg"))[:6]):
        shutil.copy(scene, images / f"img{i}.jpeg")
    models = (tiny_detector / "weights" / "best.pt", tiny_classifier[0] / "best.pt")
    args = {"progress": False, "chunk_images": 2}
    infer.run(images, *models, tmp_path / "whole", **args)
    whole = pd.read_parquet(tmp_path / "whole" / "detections.parquet")
    writes = list(stop_after_writes.names)
    assert writes[:3] == ["chunk-00000.parquet", "chunk-00001.parquet", "chunk-00002.parquet"], writes
    assert writes[-1] == "detections.parquet"
    for kill_after in range(1, len(writes) + 1):
        out = tmp_path / f"killed-after-{kill_after}"
        stop_after_writes.arm(kill_after)
        with pytest.raises(_Killed):
            infer.run(images, *models, out, **args)
        stop_after_writes.arm(0)
        infer.run(images, *models, out, resume=True, **args)
        resumed = pd.read_parquet(out / "detections.parquet")
        pd.testing.assert_frame_equal(resumed, whole)
        redone = [name for name in stop_after_writes.names if name.startswith("chunk-")]
        assert len(redone) == max(0, 3 - kill_after), f"stopped after {writes[kill_after - 1]}: redid {redone}"
        assert not (out / ".chunks").exists()
