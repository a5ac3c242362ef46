import csv
import json
import time

import numpy as np
import pytest
import torch

from umnist import classifier
from umnist.classifier.train import TimeBudget, digit_or_background_loss
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
    first = classifier.run(tiny_crops, tmp_path, "tiny", epochs=2, max_minutes=None, **QUICK)
    assert first["epochs_done"] == 2
    with pytest.raises(UmnistError, match="holds a run already"):
        classifier.run(tiny_crops, tmp_path, "tiny", **QUICK)
    before = torch.load(tmp_path / "last.pt", weights_only=True)
    again = classifier.run(tiny_crops, tmp_path, resume=True, epochs=3)
    assert again["epochs_done"] == 3 and again["stop_reason"] == "epochs"
    rows = list(csv.DictReader((tmp_path / "metrics.csv").open()))
    assert [int(r["epoch"]) for r in rows] == [1, 2, 3]
    assert [float(r["lr"]) for r in rows] == [3e-3, 1e-3, 3e-4]
    after = torch.load(tmp_path / "last.pt", weights_only=True)
    assert after["resume"]["epoch"] == 3 and before["resume"]["epoch"] == 2
    assert int(after["optimizer"]["state"][0]["step"]) == 30


def test_resume_without_a_run(tiny_crops, tmp_path):
    with pytest.raises(UmnistError, match="nothing to resume"):
        classifier.run(tiny_crops, tmp_path, resume=True)


def test_max_minutes_stops_cleanly_with_best_weights(tiny_crops, tmp_path):
    started = time.monotonic()
    summary = classifier.run(tiny_crops, tmp_path, "tiny", epochs=100, max_minutes=0.06)
    elapsed = time.monotonic() - started
    assert summary["stop_reason"] == "max_minutes" and 1 <= summary["epochs_done"] < 100
    assert torch.load(tmp_path / "best.pt", weights_only=True)["meta"]["epoch"] == summary["best_epoch"]
    # The budget is kept to within the cost of an epoch as this machine ran it (a loaded CI machine runs a
    # step many times slower; a wall-clock bound alone would flake there).
    slowest_epoch = max(float(r["seconds"]) for r in csv.DictReader((tmp_path / "metrics.csv").open()))
    assert elapsed < 0.06 * 60 + 2 * slowest_epoch + 3


class FakeClock:
    def __init__(self):
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@pytest.mark.parametrize("now, steps, finish, expected", [
    (0.0, [], None, False),          # before the first step nothing is known: take it
    (50.0, [1.0], None, False),      # 50 + 1 + 1.2 * (1000 / (3 * 64) + 2) = 59.6 < 60
    (54.0, [1.0], None, True),       # 63.6 > 60
    (52.0, [1.0, 3.0], 5.0, True),   # the slowest recent step counts: 52 + 3 + 1.2 * 5 = 61 > 60
    (52.0, [1.0, 1.0], 5.0, False),  # 52 + 1 + 6 = 59 < 60
])
def test_time_budget_leaves_room_for_a_step_and_the_end_of_the_epoch(now, steps, finish, expected):
    clock = FakeClock()
    budget = TimeBudget(0.0, 1.0, val_count=1000, clock=clock)
    for seconds in steps:
        budget.stepped(seconds, int(64 * seconds))
    if finish is not None:
        budget.finished_epoch(finish)
    clock.now = now
    assert budget.out_of_time() is expected


def test_time_budget_without_max_minutes_never_stops():
    budget = TimeBudget(0.0, None, val_count=10, clock=lambda: 1e9)
    budget.stepped(1.0, 8)
    assert not budget.out_of_time()


def test_cli(tiny_crops, tmp_path, capsys):
    assert main(["train-classifier", "--crops", str(tiny_crops), "--out", str(tmp_path / "run"),
                 "--epochs", "1", "--epoch-images", "128"]) == 0
    assert "stopped (epochs) after 1/1 epochs" in capsys.readouterr().out
    assert main(["train-classifier", "--crops", str(tmp_path), "--out", str(tmp_path / "x")]) == 2
    assert "crop index not found" in capsys.readouterr().err


def test_background_loss_is_cross_entropy_for_digits_and_uniform_for_background():
    logits = torch.randn(6, 10)
    labels = torch.tensor([0, 3, 9, 10, 10, 5])
    expected = torch.cat([torch.nn.functional.cross_entropy(logits[[0, 1, 2, 5]], labels[[0, 1, 2, 5]],
                                                            reduction="none"),
                          -logits[3:5].log_softmax(dim=1).mean(dim=1)])
    assert digit_or_background_loss(logits, labels).item() == pytest.approx(expected.mean().item(), rel=1e-6)
    uniform = torch.zeros(2, 10)
    assert digit_or_background_loss(uniform, torch.tensor([10, 10])).item() == pytest.approx(np.log(10))


@pytest.mark.slow
def test_background_crops_teach_the_classifier_to_be_unsure(mnist_dir, tmp_path):
    """With background crops (label 10) in the set, the top probability on val background falls towards 0.1
    (unsure), which is what postprocess's floor reads; digit accuracy is scored on digits alone."""
    from umnist import synth

    data = tmp_path / "data"
    synth.run(mnist_dir, data, "tiny", progress=False, workers=1, scenes_train=150, scenes_val=20,
              crops_background=1.0, mnist_crops_per_class=200)
    summary = classifier.run(data / "crops", tmp_path / "run", "tiny", epochs=3, epoch_images=2048)
    rows = list(csv.DictReader((tmp_path / "run" / "metrics.csv").open()))
    # Sure of the digits, unsure of the background (a classifier never shown background gives it ~0.9).
    assert summary["best_val_accuracy"] >= 0.7 and float(rows[-1]["val_background_prob"]) < 0.4
    val = json.loads((data / "manifest.json").read_text())["splits"]["val"]
    confusion = np.loadtxt(tmp_path / "run" / "confusion.csv", delimiter=",", skiprows=1, dtype=int)[:, 1:]
    assert val["background_crops"] > 0 and confusion.sum() == val["crops"] - val["background_crops"]
