"""`umnist run`: the compiled graph end to end with KFP's local runner: real tiny training, scored."""

import json

import pytest

from umnist import cli

pytestmark = pytest.mark.slow


def test_umnist_run_tiny_end_to_end(tmp_path, mnist_dir, capsys):
    out = tmp_path / "run"
    assert cli.main(["run", "--profile", "tiny", "--out", str(out), "--mnist", str(mnist_dir), "--parts", "2",
                     "--scenes", "4"]) == 0
    printed = capsys.readouterr().out
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["images"] == 4 and set(metrics["sum_accuracy"]) == {"detector", "reclassified", "postprocessed"}
    assert metrics["boxes"]["ground_truth_boxes"] > 0
    assert "held-out scenes" in printed and str(out / "report.html") in printed
    assert "<html" in (out / "report.html").read_text().lower()


def test_umnist_run_refuses_a_local_store(tmp_path, mnist_dir, capsys):
    assert cli.main(["run", "--out", str(tmp_path), "--mnist", str(mnist_dir), "--store", str(tmp_path)]) == 2
    assert "s3:// or minio://" in capsys.readouterr().err
