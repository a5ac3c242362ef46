"""bench/gpu_check.py: the budget arithmetic, and whole runs on the CPU at toy sizes (figures poor, shape right)."""

import argparse
import importlib.util
import json
import os
import subprocess
import sys
import time

import pytest

from tests.conftest import REPO

PHASES = ("synth", "heldout", "train", "predict")

spec = importlib.util.spec_from_file_location("gpu_check", REPO / "bench" / "gpu_check.py")
gpu_check = importlib.util.module_from_spec(spec)
spec.loader.exec_module(gpu_check)


@pytest.mark.parametrize("text, seconds", [("600", 600), ("600s", 600), ("10m", 600), ("1.5m", 90), (" 45 ", 45)])
def test_budget_in_seconds_or_minutes(text, seconds):
    assert gpu_check.parse_budget(text) == seconds


@pytest.mark.parametrize("text", ["", "10h", "-5", "0", "m", "ten"])
def test_bad_budget_is_refused(text):
    with pytest.raises(argparse.ArgumentTypeError, match="budget"):
        gpu_check.parse_budget(text)


def test_phases_end_in_order_inside_the_budget():
    ends = [gpu_check.phase_deadline(100.0, 600, phase) for phase in ("synth", "heldout", "train", "predict")]
    assert ends == sorted(ends) and 100 < ends[0] and ends[-1] < 700


# The grace is 3 % of the budget, at least 15 s: 18 s of 600 s, 15 s of 180 s.
@pytest.mark.parametrize("budget, now, minutes", [(600, 60, (510 - 60 - 18) / 60), (180, 30, (153 - 30 - 15) / 60)])
def test_trainers_stop_a_grace_before_their_phase_ends(budget, now, minutes):
    deadline = gpu_check.phase_deadline(0.0, budget, "train")
    assert gpu_check.trainer_minutes(now, deadline, budget) == pytest.approx(minutes, abs=1e-3)


def _run(tmp_path, *args, timeout):
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run([sys.executable, str(REPO / "bench" / "gpu_check.py"), *args, "--out", str(tmp_path)],
                          capture_output=True, text=True, env=env, timeout=timeout)


@pytest.mark.slow
def test_whole_check_at_toy_sizes_finishes_in_budget(mnist_dir, tmp_path):
    budget = 180
    start = time.monotonic()
    done = _run(tmp_path, f"{budget}s", "--profile", "tiny", "--mnist", str(mnist_dir), "--heldout", "6",
                "--heldout-size", "256", timeout=budget + 60)
    elapsed = time.monotonic() - start
    report = json.loads((tmp_path / "gpu_check.json").read_text())
    assert done.returncode == 0, done.stdout + done.stderr + json.dumps(report["phases"], indent=1)
    assert elapsed < budget + 10  # the script's own start and the interpreter's exit on top of the budget
    assert report["finished"] and report["total_s"] < budget
    assert {p: v["status"] for p, v in report["phases"].items()} == dict.fromkeys(PHASES, "ok")
    assert report["synth"]["scenes"] == 30 and report["synth"]["scenes_per_s"] > 0
    for trainer in ("detector", "classifier"):
        assert report[trainer]["images_per_s"] > 0 and report[trainer]["gpu_memory_peak_gb"] is None
    assert report["infer"]["images"] == 6 and report["infer"]["images_per_s"] > 0
    assert set(report["accuracy"]) == {"detector", "reclassified", "postprocessed"}
    assert 0 <= report["detection_recall"] <= 1 and report["images"] == 6
    assert report["machine"]["cpu_cores"] >= 1 and report["train_max_minutes"] > 0


def test_a_failed_phase_still_leaves_the_figures(tmp_path):
    empty_mnist = tmp_path / "no-mnist"
    empty_mnist.mkdir()
    done = _run(tmp_path / "run", "60", "--profile", "tiny", "--mnist", str(empty_mnist), timeout=120)
    report = json.loads((tmp_path / "run" / "gpu_check.json").read_text())
    assert done.returncode == 1 and report["finished"]
    assert {p: v["status"] for p, v in report["phases"].items()} == {
        "synth": "failed", "heldout": "failed", "train": "skipped", "predict": "skipped"}
    assert "mnist_splits" in report["phases"]["synth"]["processes"]["synth"]["log_tail"]


def test_an_error_before_the_phases_is_said_on_stderr_too(tmp_path, monkeypatch):
    monkeypatch.delenv("UMNIST_MNIST_DIR", raising=False)
    done = _run(tmp_path, "60", "--profile", "tiny", timeout=60)
    assert done.returncode == 1
    assert "gpu_check: error: no MNIST directory: pass --mnist DIR" in done.stderr
    assert json.loads((tmp_path / "gpu_check.json").read_text())["error"].startswith("no MNIST directory")


def test_a_stage_past_its_deadline_is_stopped(mnist_dir, tmp_path):
    args = argparse.Namespace(budget=60.0, profile="tiny", out=str(tmp_path))
    check = gpu_check.Check(args)
    try:
        synth = ["synth", "--out", str(tmp_path / "data"), "--mnist", str(mnist_dir), "--profile", "tiny"]
        assert not check.run("synth", {"synth": synth}, time.monotonic() + 0.5)
    finally:
        check.gpu.stop()
    phase = json.loads((tmp_path / "gpu_check.json").read_text())["phases"]["synth"]
    assert phase["status"] == "timeout" and phase["seconds"] < 10
    assert phase["processes"]["synth"]["killed_at_deadline"] and not (tmp_path / "data").exists()
