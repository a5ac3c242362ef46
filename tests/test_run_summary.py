"""umnist.run_summary: the Markdown run summary reads score's metrics.json defensively."""

from umnist import run_summary


def test_ladder_recall_and_stop_reasons():
    metrics = {"images": 3, "sum_accuracy": {"detector": 0.5, "reclassified": 0.75, "postprocessed": 1.0},
               "boxes": {"detector": {"recall": 0.9, "precision": 0.8}}}
    text = run_summary.markdown(metrics, {"detector": "obj_loss", "classifier": "epochs"})
    assert "## umnist run: 3 images" in text
    assert "| detector | 50.00 % | 90.00 % | 80.00 % |" in text and "| postprocessed | 100.00 % | — | — |" in text
    assert "| detector | obj_loss |" in text and "| classifier | epochs |" in text
    assert "digit size" not in text  # not reported by this score


def test_recall_by_size_when_score_reports_it():
    metrics = {"sum_accuracy": {}, "detection_recall_by_size": {"<20 px": {"recall": 0.5}, "20-100 px": 0.25}}
    text = run_summary.markdown(metrics, {})
    assert "| <20 px | 50.00 % |" in text and "| 20-100 px | 25.00 % |" in text and "stopped by" not in text


def test_stop_reason_from_summary_json(tmp_path):
    (tmp_path / "summary.json").write_text('{"stop_reason": "time_budget"}')
    assert run_summary.stop_reason(tmp_path / "summary.json") == "time_budget"
    assert run_summary.stop_reason(tmp_path / "missing.json") == ""
