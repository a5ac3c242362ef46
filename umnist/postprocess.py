"""Post-processing: from the infer table to one digit sum per image (the write-up's last rung, > 99.1 %).

Two filters run in this order on each image's detections, then the kept digits are summed:
1. nested boxes: a box lying completely inside another (intersection over the smaller box's area above
   `nested_threshold`) is dropped, the smaller one going. Big digits carry artefacts that the detector reports
   as small digits inside them; NMS cannot remove those because their IoU with the big box is tiny.
2. probability floor: a digit whose averaged TTA probability is below `min_prob` is dropped (background the
   detector took for a digit; the classifier is unsure about it).
The sum is clamped to 0..27, the competition's classes. Every image id of the input gets a row, including
images with no detection (sum 0).
"""

import dataclasses
import os
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from umnist import config
from umnist.config import opt
from umnist.fileio import atomic_path
from umnist.labels import MAX_DIGIT_SUM
from umnist.tables import (
    BOX_COLUMNS,
    EMPTY,
    KEPT,
    LOW_PROB,
    NESTED,
    check_detections,
    read_detections,
    skipped_images,
)


@dataclasses.dataclass
class PostprocessConfig:
    nested_threshold: float = opt(0.999, "intersection over the smaller box's area above which the smaller "
                                  "box is dropped: big digits have artefacts detected as small digits inside "
                                  "them, which IoU-based NMS cannot remove (write-up, 'Post processing')")
    min_prob: float = opt(0.45, "drop a digit whose averaged TTA probability is below this: background taken "
                          "for a digit gets a low classifier probability (write-up, 'Post processing'; the "
                          "original tested 0.9 on the sum of the two TTA probabilities, the same rule)")

    def check(self) -> list[str]:
        problems = []
        if not 0 < self.nested_threshold <= 1:
            problems.append(f"nested_threshold={self.nested_threshold} must be in (0, 1]")
        if not 0 <= self.min_prob <= 1:
            problems.append(f"min_prob={self.min_prob} must be in [0, 1]")
        return problems


def nested_box_filter(boxes: np.ndarray, probs: np.ndarray, threshold: float = 0.999) -> np.ndarray:
    """Keep mask over one image's boxes (N, 4 as x1 y1 x2 y2): False for a box lying inside another.

    Box i is inside box j when intersection / area(i) > threshold and i ranks below j, ranking by area, then
    classifier probability, then the earlier row. So the smaller box goes; of two equal boxes (each fully
    inside the other) exactly one survives: the one with the higher probability, the earlier row on a tie.
    A box inside a box that is itself dropped is still dropped: every pair is compared on the input boxes.
    A zero-area box counts as inside another when its corners lie within that box.
    """
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    probs = np.asarray(probs, dtype=np.float64).reshape(-1)
    n = len(boxes)
    x1, y1, x2, y2 = boxes.T
    area = (x2 - x1) * (y2 - y1)
    iw = np.clip(np.minimum(x2[:, None], x2[None]) - np.maximum(x1[:, None], x1[None]), 0, None)
    ih = np.clip(np.minimum(y2[:, None], y2[None]) - np.maximum(y1[:, None], y1[None]), 0, None)
    inter = iw * ih
    with np.errstate(divide="ignore", invalid="ignore"):
        inside = inter / area[:, None] > threshold
    corners_within = ((x1[:, None] >= x1[None]) & (x2[:, None] <= x2[None])
                      & (y1[:, None] >= y1[None]) & (y2[:, None] <= y2[None]))
    inside = np.where(area[:, None] > 0, inside, corners_within)
    index = np.arange(n)
    same_area, same_prob = area[:, None] == area[None], probs[:, None] == probs[None]
    ranks_below = ((area[:, None] < area[None]) | (same_area & (probs[:, None] < probs[None]))
                   | (same_area & same_prob & (index[:, None] > index[None])))
    dominated = inside & ranks_below
    np.fill_diagonal(dominated, False)
    return ~dominated.any(axis=1)


def apply_probability_floor(probs: np.ndarray, min_prob: float) -> np.ndarray:
    """Keep mask: True where prob >= min_prob ("below the floor" means strictly below).

    The floor is compared in the probabilities' own float type, so a float32 0.45 is not dropped by a float64
    0.45 (which is slightly larger).
    """
    probs = np.asarray(probs)
    floor = np.asarray(min_prob, dtype=probs.dtype if np.issubdtype(probs.dtype, np.floating) else np.float64)
    return probs >= floor


def digit_sums(table: pd.DataFrame, digit_column: str = "cls_digit", mask=None) -> pd.Series:
    """Sum of `digit_column` per image over the rows where `mask` holds (default: all non-empty rows).

    Every image id of the table gets a value (0 when no row counts), sorted by id, clamped to 0..27.
    """
    counted = ~table["empty"].to_numpy(bool) if mask is None else np.asarray(mask, bool)
    ids = pd.Index(sorted(table["image_id"].unique()), name="image_id")
    sums = table.loc[counted].groupby("image_id")[digit_column].sum()
    return sums.reindex(ids, fill_value=0).clip(0, MAX_DIGIT_SUM).astype(np.int64).rename("digit_sum")


def filter_detections(table: pd.DataFrame, cfg: PostprocessConfig) -> pd.DataFrame:
    """The table plus `kept` and `drop_reason`: nested boxes first, then the probability floor."""
    empty = table["empty"].to_numpy(bool)
    reason = np.where(empty, EMPTY, KEPT).astype(object)
    boxes = table[BOX_COLUMNS].to_numpy(np.float64)
    probs = table["cls_prob"].to_numpy()
    detection_rows = np.flatnonzero(~empty)
    for rows in table.iloc[detection_rows].groupby("image_id", sort=False).indices.values():
        positions = detection_rows[rows]
        keep = nested_box_filter(boxes[positions], probs[positions], cfg.nested_threshold)
        reason[positions[~keep]] = NESTED
    low = (reason == KEPT) & ~apply_probability_floor(probs, cfg.min_prob)
    reason[low] = LOW_PROB
    out = table.copy()
    out["kept"] = reason == KEPT
    out["drop_reason"] = reason.astype(str)
    return out


def run(detections: str | os.PathLike | pd.DataFrame, out_dir: str | os.PathLike,
        profile: str | os.PathLike = "tiny", **overrides) -> pd.DataFrame:
    """Filter `detections` (the infer table or its Parquet path) and write, in `out_dir`:
    `submission.csv` (id,digit_sum, one row per image, sorted by id), `detections_filtered.parquet` and
    `config.yaml`. Returns the filtered table.
    """
    cfg = config.resolve(PostprocessConfig, "postprocess", profile, **overrides)
    if isinstance(detections, pd.DataFrame):
        check_detections(detections, "detections table")
        table = detections.astype({"image_id": str})
    else:
        table = read_detections(detections)
    filtered = filter_detections(table.reset_index(drop=True), cfg)
    sums = digit_sums(filtered, mask=filtered["kept"])
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    with atomic_path(out / "submission.csv") as tmp:
        sums.rename_axis("id").reset_index().to_csv(tmp, index=False)
    with atomic_path(out / "detections_filtered.parquet") as tmp:
        filtered.to_parquet(tmp, index=False)
    config.save(cfg, "postprocess", out, profile)
    return filtered


def register(sub) -> None:
    p = sub.add_parser("postprocess", help="drop nested and unsure digits; write submission.csv")
    p.add_argument("--detections", required=True, help="detections.parquet written by `umnist infer`")
    p.add_argument("--out", required=True, help="output directory")
    config.add_arguments(p, PostprocessConfig)
    p.set_defaults(func=run_cli)


def run_cli(args) -> int:
    filtered = run(args.detections, args.out, args.profile, **config.overrides_from_args(args))
    reasons = filtered["drop_reason"].value_counts()
    print(f"{filtered['image_id'].nunique()} images, {int(filtered['kept'].sum())} digits kept; dropped: "
          f"{int(reasons.get(NESTED, 0))} nested, {int(reasons.get(LOW_PROB, 0))} below the floor; "
          f"wrote {Path(args.out) / 'submission.csv'}")
    skipped = skipped_images(filtered)
    if skipped:
        print(f"{len(skipped)} image(s) were unreadable, skipped by infer and given sum 0: "
              + ", ".join(list(skipped)[:5]) + (", ..." if len(skipped) > 5 else ""), file=sys.stderr)
    return 0
