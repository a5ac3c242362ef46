"""Faults: a real `python -m umnist` process killed with SIGKILL part-way, then `--resume`.

Training (detector and classifier) is killed once its first checkpoint exists, i.e. inside a later epoch, and
must end with the configured number of epochs, each exactly once in metrics.csv. Inference is killed after
its first part file and must redo only the missing parts, ending with the same table as an uninterrupted run.
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

import pandas as pd
import pytest
import torch

from umnist.cli import main
from umnist.detector import read_checkpoint

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
    killed_at = read_checkpoint(last)["epoch"]
    assert 0 <= killed_at < 3 and not (out / "summary.json").exists()
    assert main(["train-detector", "--data", str(tiny_detector_data), "--out", str(out), "--resume"]) == 0
    assert epochs_in(out / "metrics.csv") == [0, 1, 2, 3]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["epochs_completed"] == 4 and summary["stop_reason"] == "epochs_done"
    assert read_checkpoint(last)["optimizer"] is None  # final weights


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


def test_infer_killed_after_a_part_redoes_only_the_missing_parts(tiny_data, tiny_detector, tiny_classifier,
                                                                 tmp_path):
    images = tmp_path / "images"
    images.mkdir()
    scenes = sorted((tiny_data / "detection" / "images").rglob("*.jpg"))
    for i in range(40):
        shutil.copy(scenes[i % len(scenes)], images / f"img{i:03d}.jpeg")
    models = ["--detector", str(tiny_detector / "weights" / "best.pt"),
              "--classifier", str(tiny_classifier[0] / "best.pt"), "--part-images", "2", "--no-progress"]
    out = tmp_path / "out"
    kill_when(["infer", "--images", str(images), "--out", str(out), *models],
              lambda: any((out / ".parts").glob("part-*.parquet")), tmp_path / "log")
    finished = len(list((out / ".parts").glob("part-*.parquet")))
    assert 1 <= finished < 20 and not (out / "detections.parquet").exists()

    assert main(["infer", "--images", str(images), "--out", str(out), "--resume", *models]) == 0
    assert json.loads((out / "infer_stats.json").read_text())["images"] == 40 - 2 * finished
    assert not (out / ".parts").exists()
    resumed = pd.read_parquet(out / "detections.parquet")
    assert sorted(resumed["image_id"].unique()) == [f"img{i:03d}" for i in range(40)]
    assert not resumed.loc[resumed["empty"], "image_id"].duplicated().any()

    assert main(["infer", "--images", str(images), "--out", str(tmp_path / "whole"), *models]) == 0
    pd.testing.assert_frame_equal(resumed, pd.read_parquet(tmp_path / "whole" / "detections.parquet"))
