import json

import numpy as np
import pytest
from tables import detection, empty, table

from umnist import postprocess, score
from umnist.cli import main
from umnist.errors import UmnistError

BIG = (0, 0, 100, 100)
# Crafted so the three rungs of the ladder differ: detector 2/6, re-classified 3/6, post-processed 5/6.
LADDER = table(
    detection("i1", BIG, 3, det_class=4),                                       # the classifier fixes it
    detection("i2", BIG, 5), detection("i2", (10, 10, 20, 20), 1),             # nested artefact: post fixes
    detection("i3", BIG, 2),                                                     # right everywhere
    detection("i4", BIG, 4), detection("i4", (200, 0, 300, 100), 7, prob=0.2),  # background: the floor fixes
    empty("i5"),                                                                 # right everywhere (sum 0)
    detection("i6", BIG, 8),                                                     # wrong everywhere
)
LABELS = {"i1": 3, "i2": 5, "i3": 2, "i4": 4, "i5": 0, "i6": 9}


def write_labels(path, labels=LABELS):
    path.write_text("id,digit_sum\n" + "".join(f"{k},{v}\n" for k, v in labels.items()))
    return path


@pytest.fixture
def predictions(tmp_path):
    postprocess.run(LADDER, tmp_path / "pred")
    return tmp_path / "pred"


def test_ladder_per_sum_and_confusion(predictions, tmp_path):
    metrics = score.run(predictions, write_labels(tmp_path / "train.csv"), tmp_path / "score")
    assert metrics["images"] == 6
    assert metrics["correct"] == {"detector": 2, "reclassified": 3, "postprocessed": 5}
    assert metrics["sum_accuracy"] == pytest.approx({"detector": 2 / 6, "reclassified": 3 / 6,
                                                     "postprocessed": 5 / 6})
    confusion = np.array(metrics["confusion"])
    assert confusion.shape == (28, 28) and confusion.sum() == 6 and np.trace(confusion) == 5
    assert confusion[9, 8] == 1
    per_sum = {s["sum"]: s for s in metrics["per_sum"]}
    assert list(per_sum) == list(range(28))
    assert per_sum[9] == {"sum": 9, "images": 1, "correct": 0, "accuracy": 0.0}
    assert per_sum[3] == {"sum": 3, "images": 1, "correct": 1, "accuracy": 1.0}
    assert per_sum[20] == {"sum": 20, "images": 0, "correct": 0, "accuracy": None}
    assert metrics["wrong_ids"] == ["i6"] and metrics["boxes"] is None
    written = json.loads((tmp_path / "score" / "metrics.json").read_text())
    assert written == metrics
    assert set(written) == {"images", "correct", "sum_accuracy", "per_sum", "confusion", "wrong_ids", "boxes",
                            "detection_by_size", "error_causes", "inputs", "skipped_images"}
    assert written["detection_by_size"] is None
    assert written["skipped_images"] == {}
    assert (tmp_path / "score" / "report.html").is_file()


def test_tables_instead_of_a_directory(tmp_path):
    filtered = postprocess.filter_detections(LADDER, postprocess.PostprocessConfig())
    submission = postprocess.digit_sums(filtered, mask=filtered["kept"]).rename_axis("id").reset_index()
    metrics = score.run((filtered, submission), write_labels(tmp_path / "train.csv"), tmp_path / "score")
    assert metrics["correct"]["postprocessed"] == 5


def test_sum_above_27_is_clamped_before_scoring(tmp_path):
    nines = table(*(detection("n", (20 * k, 0, 20 * k + 10, 10), 9) for k in range(4)))
    postprocess.run(nines, tmp_path / "pred")
    metrics = score.run(tmp_path / "pred", write_labels(tmp_path / "l.csv", {"n": 27}), tmp_path / "s")
    assert metrics["correct"] == {"detector": 1, "reclassified": 1, "postprocessed": 1}


ALL = "".join(f"{k},{v}\n" for k, v in LABELS.items())


@pytest.mark.parametrize("content, message", [
    ("", "header must be 'id,digit_sum', got 'an empty file'"),
    ("id,sum\n" + ALL, "header must be 'id,digit_sum', got 'id,sum'"),
    ("id,digit_sum\n", "no rows"),
    ("id,digit_sum\ni1,3,4\n", "line 2 has 3 field.*expected 2"),
    ("id,digit_sum\ni1,3\ni2\n", "line 3 has 1 field"),
    ("id,digit_sum\n,3\n", "line 2 has an empty id"),
    ("id,digit_sum\ni1,3.5\n", "line 2: digit_sum '3.5' is not an integer"),
    ("id,digit_sum\ni1,x\n", "digit_sum 'x' is not an integer"),
    ("id,digit_sum\ni1,\n", "digit_sum '' is not an integer"),
    ("id,digit_sum\ni1,28\n", "digit_sum 28 is outside 0..27"),
    ("id,digit_sum\ni1,-1\n", "digit_sum -1 is outside 0..27"),
    ("id,digit_sum\n" + ALL + "i1,3\ni2,5\n", "2 duplicate id.*e.g. i1, i2"),
    ("id,digit_sum\n" + ALL.replace("i6,9\n", ""), "submission.csv: 1 id.*not in .*train.csv, e.g. i6"),
    ("id,digit_sum\n" + ALL + "x1,1\nx2,2\nx3,3\nx4,4\n",
     "train.csv: 4 id.*no prediction in .*submission.csv, e.g. x1, x2, x3, ..."),
])
def test_bad_labels(predictions, tmp_path, content, message):
    (tmp_path / "train.csv").write_text(content)
    with pytest.raises(UmnistError, match=message):
        score.run(predictions, tmp_path / "train.csv", tmp_path / "score")
    assert not (tmp_path / "score" / "metrics.json").exists()


def test_missing_files(predictions, tmp_path):
    with pytest.raises(UmnistError, match="nope.csv: file not found"):
        score.run(predictions, tmp_path / "nope.csv", tmp_path / "score")
    labels = write_labels(tmp_path / "train.csv")
    (predictions / "submission.csv").unlink()
    with pytest.raises(UmnistError, match="submission.csv: file not found"):
        score.run(predictions, labels, tmp_path / "score")


def test_submission_must_match_its_detections(predictions, tmp_path):
    (predictions / "submission.csv").write_text("id,digit_sum\n" + ALL)     # the true sums, not the kept ones
    with pytest.raises(UmnistError, match="1 sum.*differ from the kept detections, e.g. i6"):
        score.run(predictions, write_labels(tmp_path / "train.csv"), tmp_path / "score")


def test_subset_scores_only_the_predicted_ids(predictions, tmp_path):
    labels = write_labels(tmp_path / "train.csv", {**LABELS, "x1": 1, "x2": 2})
    metrics = score.run(predictions, labels, tmp_path / "score", subset=True)
    assert metrics["images"] == 6 and metrics["correct"]["postprocessed"] == 5


# Boxes: gt A (digit 1), B (digit 2), C (digit 3, never found) in b1; no digit in b2.
# p2 (conf 0.9) and p1 (conf 0.5) both cover A: greedy by confidence gives A to p2, p1 is a false positive,
# until post-processing drops p2 as nested in p1. p3 covers the top half of B: IoU exactly 0.5 matches.
BOXES = table(
    detection("b1", (0, 0, 100, 100), 1, conf=0.5),                                 # p1
    detection("b1", (10, 0, 100, 100), 7, conf=0.9),                                # p2
    detection("b1", (200, 0, 300, 50), 2, det_class=5, conf=0.7),                   # p3
    detection("b2", (0, 0, 10, 10), 0, conf=0.9),                                   # nothing there
)
TRUE_BOXES = "id,digit,x1,y1,x2,y2\nb1,1,0,0,100,100\nb1,2,200,0,300,100\nb1,3,400,0,500,100\n"


def test_box_metrics(tmp_path):
    postprocess.run(BOXES, tmp_path / "pred")
    labels = write_labels(tmp_path / "train.csv", {"b1": 6, "b2": 0})
    (tmp_path / "boxes.csv").write_text(TRUE_BOXES)
    metrics = score.run(tmp_path / "pred", labels, tmp_path / "score", boxes=tmp_path / "boxes.csv")
    boxes = metrics["boxes"]
    assert boxes["iou_threshold"] == 0.5 and boxes["ground_truth_boxes"] == 3
    assert boxes["detector"] == {"detections": 4, "matched": 2, "correct_digits": 0, "recall": 2 / 3,
                                 "precision": 2 / 4, "digit_accuracy": 0.0}
    assert boxes["reclassified"] == {**boxes["detector"], "correct_digits": 1, "digit_accuracy": 0.5}
    assert boxes["postprocessed"] == {"detections": 3, "matched": 2, "correct_digits": 2, "recall": 2 / 3,
                                      "precision": 2 / 3, "digit_accuracy": 1.0}


# One wrong image per cause, one with two causes, one right: truth is a 5 at BIG (and a 2 at RIGHT in c_two).
RIGHT = (200, 0, 300, 100)
CAUSES = table(
    empty("c_missed"),                                                  # the 5 never found
    detection("c_dropped", BIG, 5, prob=0.2),                           # found, below the floor
    detection("c_false", BIG, 5), detection("c_false", RIGHT, 3),       # a kept box on nothing
    detection("c_misread", BIG, 6),                                     # found and kept, read as a 6
    detection("c_two", BIG, 6),                                         # misread, and its 2 missed
    detection("c_right", BIG, 5),
)
CAUSE_BOXES = "id,digit,x1,y1,x2,y2\n" + "".join(f"{i},5,0,0,100,100\n" for i in (
    "c_missed", "c_dropped", "c_false", "c_misread", "c_two", "c_right")) + "c_two,2,200,0,300,100\n"


def test_error_causes_name_why_each_wrong_sum_is_wrong(tmp_path):
    postprocess.run(CAUSES, tmp_path / "pred")
    labels = write_labels(tmp_path / "train.csv", {"c_missed": 5, "c_dropped": 5, "c_false": 5, "c_misread": 5,
                                                   "c_two": 7, "c_right": 5})
    (tmp_path / "boxes.csv").write_text(CAUSE_BOXES)
    metrics = score.run(tmp_path / "pred", labels, tmp_path / "score", boxes=tmp_path / "boxes.csv")
    assert metrics["error_causes"] == {
        "digits": {"missed": 2, "dropped": 1, "false": 1, "misread": 2}, "wrong_images": 5,
        "wrong_images_with": {"missed": 2, "dropped": 1, "false": 1, "misread": 2},
        "wrong_images_with_only": {"missed": 1, "dropped": 1, "false": 1, "misread": 1}}
    assert score.run(tmp_path / "pred", labels, tmp_path / "no-boxes")["error_causes"] is None


def test_match_boxes_is_greedy_by_confidence():
    truth = np.array([[0, 0, 10, 10], [20, 0, 30, 10]], float)
    pred = np.array([[0, 0, 10, 10], [1, 0, 10, 10], [20, 0, 25, 10], [20, 0, 24.9, 10]], float)
    assert score.match_boxes(pred, np.array([0.2, 0.9, 0.5, 0.6]), truth) == [(1, 0), (2, 1)]
    assert score.match_boxes(pred[:0], np.array([]), truth) == []
    assert score.match_boxes(pred, np.ones(4), truth[:0]) == []


@pytest.mark.parametrize("content, message", [
    ("id,digit,x,y,w,h\n", "header must be 'id,digit,x1,y1,x2,y2'"),
    ("id,digit,x1,y1,x2,y2\nb1,10,0,0,1,1\n", "line 2: digit '10' is not an integer 0..9"),
    ("id,digit,x1,y1,x2,y2\nb1,1,0,0,a,1\n", "line 2: box '0,0,a,1' is not four numbers"),
    ("id,digit,x1,y1,x2,y2\nb1,1,5,0,1,1\n", "line 2: box '5,0,1,1' needs x1 < x2"),
    ("id,digit,x1,y1,x2,y2\nzz,1,0,0,1,1\n", "1 id.*not among the scored images, e.g. zz"),
])
def test_bad_boxes(tmp_path, content, message):
    postprocess.run(BOXES, tmp_path / "pred")
    labels = write_labels(tmp_path / "train.csv", {"b1": 6, "b2": 0})
    (tmp_path / "boxes.csv").write_text(content)
    with pytest.raises(UmnistError, match=message):
        score.run(tmp_path / "pred", labels, tmp_path / "score", boxes=tmp_path / "boxes.csv")


def test_cli(predictions, tmp_path, capsys):
    labels = write_labels(tmp_path / "train.csv")
    out = tmp_path / "score"
    assert main(["score", "--predictions", str(predictions), "--labels", str(labels), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "6 images: detector 33.3333%, reclassified 50.0000%, postprocessed 83.3333%" in printed
    assert json.loads((out / "metrics.json").read_text())["wrong_ids"] == ["i6"]
    labels.write_text("id,digit_sum\ni1,x\n")
    assert main(["score", "--predictions", str(predictions), "--labels", str(labels), "--out", str(out)]) == 2
    assert capsys.readouterr().err.startswith("umnist score: error: ")


BUCKETS = ["<16", "16-32", "32-64", "64-128", "128-256", "256-512", "512-1024", ">=1024"]


@pytest.mark.parametrize("side, bucket", [
    (1, "<16"), (15.99, "<16"), (16, "16-32"), (31.9, "16-32"), (32, "32-64"), (127.5, "64-128"),
    (128, "128-256"), (511, "256-512"), (512, "512-1024"), (1023.9, "512-1024"), (1024, ">=1024"), (2100, ">=1024"),
])
def test_size_bucket_edges(side, bucket):
    buckets = score.size_buckets()
    assert [b["bucket"] for b in buckets] == BUCKETS
    found = buckets[int(score.size_bucket([side])[0])]
    assert found["bucket"] == bucket
    assert found["min_px"] <= side and (found["max_px"] is None or side < found["max_px"])


CELL = (100, 100, 200, 200)      # a "1" drawn as its whole 28x28 MNIST frame, scaled to 100 px
INK = (145, 118, 156, 190)       # the same "1" as its tight ink box: 11 x 72 px


@pytest.mark.parametrize("pred, true, matches, by_iou", [
    (CELL, INK, True, False),                   # the detector's square cell finds a thin "1" labelled by its ink
    (INK, CELL, True, False),                   # and the other way round (IoU 0.08 both ways)
    (CELL, CELL, True, True),
    ((140, 100, 240, 200), CELL, True, False),  # shifted by 40 % of the side: 60 % covered
    ((160, 100, 260, 200), CELL, False, False),  # shifted by 60 %: 40 % covered
    ((150, 150, 160, 160), (0, 0, 400, 400), False, False),   # an artefact inside a big digit is not that digit
    ((200, 100, 300, 200), CELL, False, False),  # the neighbouring cell
])
def test_cover_rule_matches_ink_boxes_and_square_cells(pred, true, matches, by_iou):
    pred, true = np.array([pred], float), np.array([true], float)
    assert score.cover_boxes(pred, np.ones(1), true) == ([(0, 0)] if matches else [])
    assert score.match_boxes(pred, np.ones(1), true) == ([(0, 0)] if by_iou else [])


# t1: a thin "1" (ink box) found by a square cell; a 20 px "7" missed; a 600 px "8" found, with an artefact box
# inside it that post-processing drops as nested. t2: no digit, one false box of 40 px.
BY_SIZE = table(
    detection("t1", CELL, 1, conf=0.9),
    detection("t1", (1010, 990, 1600, 1610), 8, conf=0.8),
    detection("t1", (1200, 1200, 1210, 1210), 4, conf=0.7),
    detection("t2", (0, 0, 40, 40), 5, conf=0.9),
)
BY_SIZE_TRUTH = ("id,digit,x1,y1,x2,y2\n" + "t1,1," + ",".join(map(str, INK)) + "\n"
                 "t1,7,300,300,320,320\nt1,8,1000,1000,1600,1600\n")


def test_detection_by_size(tmp_path):
    postprocess.run(BY_SIZE, tmp_path / "pred")
    (tmp_path / "boxes.csv").write_text(BY_SIZE_TRUTH)
    metrics = score.run(tmp_path / "pred", write_labels(tmp_path / "train.csv", {"t1": 16, "t2": 0}),
                        tmp_path / "score", boxes=tmp_path / "boxes.csv")
    assert metrics["boxes"]["detector"]["matched"] == 1           # by IoU: the thin "1" is not found
    by_size = metrics["detection_by_size"]
    assert (by_size["cover_threshold"], by_size["side_ratio"]) == (0.5, 0.5)
    for level in ("detector", "postprocessed"):
        assert [row["bucket"] for row in by_size[level]] == BUCKETS
    detector = {row["bucket"]: row for row in by_size["detector"]}
    assert detector["64-128"] == {"bucket": "64-128", "min_px": 64, "max_px": 128, "true": 1, "found": 1,
                                  "recall": 1.0, "predicted": 1, "correct": 1, "precision": 1.0}
    assert (detector["16-32"]["true"], detector["16-32"]["recall"], detector["16-32"]["precision"]) == (1, 0.0, None)
    assert (detector["512-1024"]["recall"], detector["512-1024"]["precision"]) == (1.0, 1.0)
    assert (detector["<16"]["true"], detector["<16"]["recall"], detector["<16"]["predicted"],
            detector["<16"]["precision"]) == (0, None, 1, 0.0)          # the artefact, in its own size's bucket
    assert (detector["32-64"]["predicted"], detector["32-64"]["precision"]) == (1, 0.0)   # t2's false box
    kept = {row["bucket"]: row for row in by_size["postprocessed"]}
    assert kept["<16"]["predicted"] == 0 and kept["64-128"]["recall"] == 1.0
    assert sum(row["true"] for row in by_size["postprocessed"]) == 3
    assert json.loads((tmp_path / "score" / "metrics.json").read_text())["detection_by_size"] == by_size
    page = (tmp_path / "score" / "report.html").read_text()
    assert "Detection by digit size" in page and "<td>64-128</td><td>1</td><td>1</td><td>100.00 %</td>" in page
