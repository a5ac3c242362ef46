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


def test_recall_by_size_from_score_metrics(tmp_path):
    """The per-size table comes from score's own metrics.json (the scoring test's boxes: a thin "1" found by
    its cell, a 20 px "7" missed, a 600 px "8" found)."""
    from tests.test_score import BY_SIZE, BY_SIZE_TRUTH, write_labels
    from umnist import postprocess, score

    postprocess.run(BY_SIZE, tmp_path / "pred")
    (tmp_path / "boxes.csv").write_text(BY_SIZE_TRUTH)
    metrics = score.run(tmp_path / "pred", write_labels(tmp_path / "train.csv", {"t1": 16, "t2": 0}),
                        tmp_path / "score", boxes=tmp_path / "boxes.csv")
    text = run_summary.markdown(metrics, {})
    assert "| 16-32 | 1 | 0.00 % | 0.00 % |" in text and "| 64-128 | 1 | 100.00 % | 100.00 % |" in text
    assert "| <16 |" not in text  # no true digit of that size


def test_stop_reason_from_summary_json(tmp_path):
    (tmp_path / "summary.json").write_text('{"stop_reason": "time_budget"}')
    assert run_summary.stop_reason(tmp_path / "summary.json") == "time_budget"
    assert run_summary.stop_reason(tmp_path / "missing.json") == ""
