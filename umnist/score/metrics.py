"""score's work: the sum accuracies, the box matching and the figures per digit size, written to metrics.json
and report.html (`umnist.score`'s docstring has the matching rules)."""

import os
from pathlib import Path

import numpy as np
import pandas as pd

from umnist.errors import UmnistError
from umnist.fileio import write_json
from umnist.labels import MAX_DIGIT_SUM
from umnist.postprocess import digit_sums
from umnist.tables import (
    BOX_COLUMNS,
    FILTERED_COLUMNS,
    FILTERED_FILE,
    SUBMISSION_FILE,
    check_detections,
    id_examples,
    read_boxes,
    read_detections,
    read_sums,
    skipped_images,
)

IOU_THRESHOLD = 0.5
# Cover matching (module docstring): share of the smaller box the intersection must cover, and the least ratio
# of the two boxes' longer sides.
COVER_THRESHOLD = 0.5
SIDE_RATIO = 0.5
# Size buckets of a digit by the longer side of its box in original pixels: powers of two spanning the
# competition's digits (14 px to about 2100 px of 4000); each bucket holds min_px <= side < max_px.
SIZE_EDGES = (16, 32, 64, 128, 256, 512, 1024)
# The ladder: name -> (digit column, counted rows). "all" = every detection, "kept" = after post-processing.
LEVELS = {"detector": ("det_class", "all"), "reclassified": ("cls_digit", "all"),
          "postprocessed": ("cls_digit", "kept")}


def ladder_text(metrics: dict, decimals: int = 2) -> str:
    """The accuracy ladder in the write-up's order, e.g. 'detector 95.10%, reclassified 98.20%, ...'."""
    return ", ".join(f"{level} {metrics['sum_accuracy'][level]:.{decimals}%}" for level in LEVELS)


def load_predictions(predictions) -> tuple[pd.DataFrame, pd.Series, str]:
    """(filtered detections, submission sums, name for messages) from a postprocess output directory or from
    a pair of tables (detections_filtered, submission with columns id,digit_sum)."""
    if isinstance(predictions, tuple | list):
        filtered, submission = predictions
        check_detections(filtered, "detections table")
        submission = submission.set_index("id")["digit_sum"].sort_index()
        name = "submission table"
    else:
        directory = Path(predictions)
        filtered = read_detections(directory / FILTERED_FILE)
        submission = read_sums(directory / SUBMISSION_FILE)
        name = str(directory / SUBMISSION_FILE)
    if any(c not in filtered.columns for c in FILTERED_COLUMNS):
        raise UmnistError(f"{name}: the detections lack kept/drop_reason: run `umnist postprocess` first")
    kept_sums = digit_sums(filtered, mask=filtered["kept"])
    if not kept_sums.index.equals(submission.index):
        raise UmnistError(f"{name}: its ids differ from the detections table's "
                          f"({len(submission)} vs {len(kept_sums)} images)")
    disagree = submission.index[kept_sums.to_numpy() != submission.to_numpy()]
    if len(disagree):
        raise UmnistError(f"{name}: {len(disagree)} sum(s) differ from the kept detections, e.g. "
                          f"{id_examples(disagree)}")
    return filtered, submission, name


def align(labels: pd.Series, submission: pd.Series, labels_name: str, predictions_name: str,
          subset: bool) -> pd.Series:
    """The true sums of the predicted ids; an error for ids missing on either side."""
    unlabelled = submission.index.difference(labels.index)
    if len(unlabelled):
        raise UmnistError(f"{predictions_name}: {len(unlabelled)} id(s) are not in {labels_name}, "
                          f"e.g. {id_examples(unlabelled)}")
    unpredicted = labels.index.difference(submission.index)
    if len(unpredicted) and not subset:
        raise UmnistError(f"{labels_name}: {len(unpredicted)} id(s) have no prediction in "
                          f"{predictions_name}, e.g. {id_examples(unpredicted)} (--subset scores only the "
                          "predicted ids)")
    return labels.reindex(submission.index)


def sum_metrics(truth: pd.Series, predicted: dict[str, pd.Series]) -> dict:
    """Ladder accuracies, per-sum accuracy and confusion matrix (true x predicted, post-processed)."""
    y = truth.to_numpy()
    final = predicted["postprocessed"].to_numpy()
    confusion = np.zeros((MAX_DIGIT_SUM + 1, MAX_DIGIT_SUM + 1), np.int64)
    np.add.at(confusion, (y, final), 1)
    per_sum = []
    for s in range(MAX_DIGIT_SUM + 1):
        images, correct = int(confusion[s].sum()), int(confusion[s, s])
        per_sum.append({"sum": s, "images": images, "correct": correct,
                        "accuracy": correct / images if images else None})
    return {
        "images": len(y),
        "correct": {level: int((p.to_numpy() == y).sum()) for level, p in predicted.items()},
        "sum_accuracy": {level: float((p.to_numpy() == y).mean()) for level, p in predicted.items()},
        "per_sum": per_sum,
        "confusion": confusion.tolist(),
        "wrong_ids": [str(i) for i in truth.index[final != y]],
    }


def _intersection(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    iw = np.clip(np.minimum(a[:, None, 2], b[None, :, 2]) - np.maximum(a[:, None, 0], b[None, :, 0]), 0, None)
    ih = np.clip(np.minimum(a[:, None, 3], b[None, :, 3]) - np.maximum(a[:, None, 1], b[None, :, 1]), 0, None)
    return iw * ih


def _area(boxes: np.ndarray) -> np.ndarray:
    return (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])


def longer_side(boxes: np.ndarray) -> np.ndarray:
    return np.maximum(boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1])


def iou_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of every box in `a` (N, 4) with every box in `b` (M, 4), boxes as x1 y1 x2 y2."""
    inter = _intersection(a, b)
    union = _area(a)[:, None] + _area(b)[None] - inter
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(union > 0, inter / union, 0.0)


def cover_matrix(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(cover, match) for every box in `a` (N, 4) with every box in `b` (M, 4): the share of the smaller box
    that the intersection covers, and whether the pair matches by the cover rule (module docstring)."""
    smaller = np.minimum(_area(a)[:, None], _area(b)[None])
    with np.errstate(divide="ignore", invalid="ignore"):
        cover = np.where(smaller > 0, _intersection(a, b) / smaller, 0.0)
    side_a, side_b = longer_side(a)[:, None], longer_side(b)[None]
    alike = np.minimum(side_a, side_b) >= SIDE_RATIO * np.maximum(side_a, side_b)
    return cover, (cover >= COVER_THRESHOLD) & alike


def _greedy(conf: np.ndarray, score: np.ndarray, allowed: np.ndarray) -> list[tuple[int, int]]:
    """Most confident prediction first, each to the unmatched allowed true box of highest `score` (N, M)."""
    free = np.ones(score.shape[1], bool)
    pairs = []
    for i in np.argsort(-conf, kind="stable"):
        candidates = np.where(free & allowed[i], score[i], -1.0)
        if len(candidates) and candidates.max() >= 0:
            j = int(np.argmax(candidates))
            free[j] = False
            pairs.append((int(i), j))
    return pairs


def match_boxes(pred: np.ndarray, conf: np.ndarray, truth: np.ndarray, threshold: float = IOU_THRESHOLD):
    """Greedy matching, most confident prediction first, each to the unmatched true box of highest IoU
    (at least `threshold`). Returns (prediction index, true box index) pairs."""
    iou = iou_matrix(pred, truth)
    return _greedy(conf, iou, iou >= threshold)


def cover_boxes(pred: np.ndarray, conf: np.ndarray, truth: np.ndarray) -> list[tuple[int, int]]:
    """Greedy matching by the cover rule (module docstring), most confident prediction first, each to the
    unmatched true box it matches with the highest cover. Returns (prediction index, true box index) pairs."""
    cover, allowed = cover_matrix(pred, truth)
    return _greedy(conf, cover, allowed)


def size_buckets() -> list[dict]:
    """The size buckets in order: {bucket, min_px, max_px}, max_px None for the last (open) one."""
    bounds = [0, *SIZE_EDGES, None]
    return [{"bucket": f"<{high}" if low == 0 else f">={low}" if high is None else f"{low}-{high}",
             "min_px": low, "max_px": high} for low, high in zip(bounds[:-1], bounds[1:], strict=True)]


def size_bucket(sides: np.ndarray) -> np.ndarray:
    """The bucket index (into `size_buckets()`) of each side in pixels."""
    return np.searchsorted(SIZE_EDGES, np.asarray(sides, np.float64), side="right")


def box_metrics(filtered: pd.DataFrame, truth: pd.DataFrame) -> dict:
    """Recall, precision and digit accuracy of matched boxes, at each level of the ladder."""
    detections = filtered.loc[~filtered["empty"].to_numpy(bool)]
    truth_by_id = dict(tuple(truth.groupby("image_id")))
    result = {"iou_threshold": IOU_THRESHOLD, "ground_truth_boxes": len(truth)}
    for level, (digit_column, rows) in LEVELS.items():
        counted = detections if rows == "all" else detections.loc[detections["kept"].to_numpy(bool)]
        matched = correct = 0
        for image_id, pred in counted.groupby("image_id"):
            if image_id not in truth_by_id:
                continue
            true = truth_by_id[image_id]
            pairs = match_boxes(pred[BOX_COLUMNS].to_numpy(np.float64), pred["det_conf"].to_numpy(np.float64),
                                true[BOX_COLUMNS].to_numpy(np.float64))
            matched += len(pairs)
            correct += sum(int(pred[digit_column].iloc[i] == true["digit"].iloc[j]) for i, j in pairs)
        result[level] = {
            "detections": len(counted), "matched": matched, "correct_digits": correct,
            "recall": matched / len(truth) if len(truth) else None,
            "precision": matched / len(counted) if len(counted) else None,
            "digit_accuracy": correct / matched if matched else None,
        }
    return result


def cover_found(detections: pd.DataFrame, truth: pd.DataFrame) -> np.ndarray:
    """For each row of `detections` (non-empty rows), the position in `truth` of the true box it matches by the
    cover rule, or -1."""
    matched = np.full(len(detections), -1)
    truth_rows = truth.groupby("image_id").indices
    for image_id, rows in detections.groupby("image_id").indices.items():
        if image_id not in truth_rows:
            continue
        true_rows = truth_rows[image_id]
        pred = detections.iloc[rows]
        pairs = cover_boxes(pred[BOX_COLUMNS].to_numpy(np.float64), pred["det_conf"].to_numpy(np.float64),
                            truth.iloc[true_rows][BOX_COLUMNS].to_numpy(np.float64))
        for i, j in pairs:
            matched[rows[i]] = true_rows[j]
    return matched


def size_rows(detections: pd.DataFrame, truth: pd.DataFrame, matched: np.ndarray) -> list[dict]:
    """Recall and precision per size bucket: a true box counts in the bucket of its longer side; a prediction
    in its matched true box's bucket, or in its own longer side's when it matches none."""
    true_bucket = size_bucket(longer_side(truth[BOX_COLUMNS].to_numpy(np.float64)))
    found = np.zeros(len(truth), bool)
    found[matched[matched >= 0]] = True
    pred_bucket = size_bucket(longer_side(detections[BOX_COLUMNS].to_numpy(np.float64)))
    pred_bucket[matched >= 0] = true_bucket[matched[matched >= 0]]
    rows = []
    for k, bucket in enumerate(size_buckets()):
        true, hit = int((true_bucket == k).sum()), int(found[true_bucket == k].sum())
        predicted, correct = int((pred_bucket == k).sum()), int((matched[pred_bucket == k] >= 0).sum())
        rows.append({**bucket, "true": true, "found": hit, "recall": hit / true if true else None,
                     "predicted": predicted, "correct": correct,
                     "precision": correct / predicted if predicted else None})
    return rows


def size_metrics(filtered: pd.DataFrame, truth: pd.DataFrame) -> tuple[dict, pd.DataFrame]:
    """(recall and precision per size bucket of all detector boxes and of the kept ones, the true boxes that no
    detector box matched), matching by the cover rule."""
    truth = truth.reset_index(drop=True)
    detections = filtered.loc[~filtered["empty"].to_numpy(bool)].reset_index(drop=True)
    result = {"cover_threshold": COVER_THRESHOLD, "side_ratio": SIDE_RATIO}
    missed = truth
    for level, rows in (("detector", "all"), ("postprocessed", "kept")):
        counted = detections if rows == "all" else detections.loc[detections["kept"].to_numpy(bool)]
        counted = counted.reset_index(drop=True)
        matched = cover_found(counted, truth)
        result[level] = size_rows(counted, truth, matched)
        if rows == "all":
            missed = truth.drop(index=matched[matched >= 0])
    return result, missed


ERROR_CAUSES = ("missed", "dropped", "false", "misread")


def error_causes(filtered: pd.DataFrame, truth: pd.DataFrame, wrong_ids: list[str]) -> dict:
    """Why the wrong sums are wrong, by the cover rule: a true digit no detector box found (`missed`), found but
    every box on it dropped by post-processing (`dropped`), a kept box on no true digit (`false`), a kept box on a
    true digit read as another digit (`misread`). Digits of each cause over every image; of the wrong images,
    those with each cause and those with that cause alone (fixing it alone would fix them)."""
    truth = truth.reset_index(drop=True)
    detections = filtered.loc[~filtered["empty"].to_numpy(bool)].reset_index(drop=True)
    kept = detections.loc[detections["kept"].to_numpy(bool)].reset_index(drop=True)
    found, kept_match = cover_found(detections, truth), cover_found(kept, truth)
    on_truth = kept_match >= 0
    cause_ids = {
        "missed": truth["image_id"].drop(index=found[found >= 0]),
        "dropped": truth["image_id"].loc[sorted(set(found[found >= 0]) - set(kept_match[on_truth]))],
        "false": kept["image_id"].loc[~on_truth],
        "misread": kept["image_id"].loc[on_truth & (kept["cls_digit"].to_numpy()
                                                     != truth["digit"].to_numpy()[np.maximum(kept_match, 0)])],
    }
    images_with = {c: set(ids) for c, ids in cause_ids.items()}
    causes_of = {image_id: {c for c in ERROR_CAUSES if image_id in images_with[c]} for image_id in wrong_ids}
    return {"digits": {c: len(ids) for c, ids in cause_ids.items()},
            "wrong_images": len(causes_of),
            "wrong_images_with": {c: sum(c in found_causes for found_causes in causes_of.values())
                                  for c in ERROR_CAUSES},
            "wrong_images_with_only": {c: sum(found_causes == {c} for found_causes in causes_of.values())
                                       for c in ERROR_CAUSES}}


def run(predictions, labels: str | os.PathLike, out: str | os.PathLike, *,
        boxes: str | os.PathLike | None = None, images: str | os.PathLike | None = None,
        gallery_limit: int = 200, subset: bool = False) -> dict:
    """Score a postprocess output (its directory, or the pair of tables) against the sums in `labels` (CSV
    id,digit_sum), and its boxes against `boxes` (CSV id,digit,x1,y1,x2,y2) when given; `images` (their
    folder) lets the report draw them.

    Writes `metrics.json` and `report.html` in `out` and returns the metrics, its summary. `subset` allows
    labels for more images than were predicted (scoring the first N train images against the whole train.csv).
    """
    if gallery_limit < 0:
        raise UmnistError(f"gallery_limit={gallery_limit} must be >= 0")
    filtered, submission, predictions_name = load_predictions(predictions)
    truth = align(read_sums(labels), submission, str(labels), predictions_name, subset)
    predicted = {}
    for level, (digit_column, rows) in LEVELS.items():
        mask = filtered["kept"].to_numpy(bool) if rows == "kept" else None
        predicted[level] = digit_sums(filtered, digit_column, mask)
    metrics = sum_metrics(truth, predicted)
    metrics["skipped_images"] = skipped_images(filtered)
    metrics["boxes"] = metrics["detection_by_size"] = metrics["error_causes"] = None
    missed = None
    if boxes is not None:
        truth_boxes = read_boxes(boxes)
        unknown = set(truth_boxes["image_id"]) - set(truth.index)
        if subset:
            truth_boxes = truth_boxes.loc[~truth_boxes["image_id"].isin(unknown)]
        elif unknown:
            raise UmnistError(f"{boxes}: {len(unknown)} id(s) are not among the scored images, "
                              f"e.g. {id_examples(unknown)}")
        metrics["boxes"] = box_metrics(filtered, truth_boxes)
        metrics["detection_by_size"], missed = size_metrics(filtered, truth_boxes)
        metrics["error_causes"] = error_causes(filtered, truth_boxes, metrics["wrong_ids"])
    metrics["inputs"] = {"predictions": predictions_name, "labels": str(labels),
                         "boxes": None if boxes is None else str(boxes),
                         "images": None if images is None else str(images)}
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    write_json(out / "metrics.json", metrics)
    from umnist.score.report import write_report  # imports OpenCV

    sums = pd.DataFrame({"true": truth, **predicted})
    write_report(out / "report.html", metrics, sums, filtered, images, gallery_limit, missed)
    return metrics
