import csv
import time

import numpy as np
import pytest
import torch

from umnist.classifier.train import train
from umnist.cli import main
from umnist.errors import UmnistError

# The `tiny` profile reaches about 0.95 on its MNIST-based val split (917 crops) in ~20 s on 2 cores.
TINY_ACCURACY_FLOOR = 0.90
QUICK = {"epoch_images": 640}  # 10 steps per epoch: enough to exercise the loop in a second


def test_tiny_profile_learns_the_digits(tiny_classifier):
    out, summary = tiny_classifier
    assert summary["stop_reason"] == "epochs" and summary["epochs_done"] == 3
    assert summary["best_val_accuracy"] >= TINY_ACCURACY_FLOOR
    rows = list(csv.DictReader((out / "metrics.csv").open()))
    assert [int(r["epoch"]) for r in rows] == [1, 2, 3]
    assert float(rows[-1]["loss"]) < float(rows[0]["loss"])
    assert all(float(r["images_per_s"]) > 0 for r in rows)
    confusion = np.loadtxt(out / "confusion.csv", delimiter=",", skiprows=1, dtype=int)[:, 1:]
    assert confusion.shape == (10, 10)
    assert np.trace(confusion) / confusion.sum() == pytest.approx(summary["best_val_accuracy"])
    best = torch.load(out / "best.pt", weights_only=True)
    assert best["meta"]["val_accuracy"] == summary["best_val_accuracy"]
    assert (out / "config.yaml").is_file() and (out / "summary.json").is_file()


def test_resume_continues_the_run(tiny_crops, tmp_path):
    first = train(tiny_crops, tmp_path, "tiny", epochs=2, max_minutes=None, **QUICK)
    assert first["epochs_done"] == 2
    with pytest.raises(UmnistError, match="holds a run already"):
        train(tiny_crops, tmp_path, "tiny", **QUICK)
    before = torch.load(tmp_path / "last.pt", weights_only=True)
    again = train(tiny_crops, tmp_path, resume=True, epochs=3)
    assert again["epochs_done"] == 3 and again["stop_reason"] == "epochs"
    rows = list(csv.DictReader((tmp_path / "metrics.csv").open()))
    assert [int(r["epoch"]) for r in rows] == [1, 2, 3]
    assert [float(r["lr"]) for r in rows] == [3e-3, 1e-3, 3e-4]
    after = torch.load(tmp_path / "last.pt", weights_only=True)
    assert after["resume"]["epoch"] == 3 and before["resume"]["epoch"] == 2
    assert int(after["optimizer"]["state"][0]["step"]) == 30


def test_resume_without_a_run(tiny_crops, tmp_path):
    with pytest.raises(UmnistError, match="nothing to resume"):
        train(tiny_crops, tmp_path, resume=True)


def test_max_minutes_stops_cleanly_with_best_weights(tiny_crops, tmp_path):
    started = time.monotonic()
    summary = train(tiny_crops, tmp_path, "tiny", epochs=100, max_minutes=0.06)
    assert time.monotonic() - started < 0.06 * 60 + 3
    assert summary["stop_reason"] == "max_minutes" and 1 <= summary["epochs_done"] < 100
    assert torch.load(tmp_path / "best.pt", weights_only=True)["meta"]["epoch"] == summary["best_epoch"]


def test_cli(tiny_crops, tmp_path, capsys):
    assert main(["train-classifier", "--crops", str(tiny_crops), "--out", str(tmp_path / "run"),
                 "--epochs", "1", "--epoch-images", "128"]) == 0
    assert "stopped (epochs) after 1/1 epochs" in capsys.readouterr().out
    assert main(["train-classifier", "--crops", str(tmp_path), "--out", str(tmp_path / "x")]) == 2
    assert "crop index not found" in capsys.readouterr().err
