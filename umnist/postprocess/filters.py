"""postprocess's work: the two filters, the digit sums and the files they go to (`umnist.postprocess`'s
docstring has the rules)."""

import os
from pathlib import Path

import numpy as np
import pandas as pd

from umnist import config
from umnist.errors import UmnistError
from umnist.fileio import atomic_path
from umnist.labels import MAX_DIGIT_SUM
from umnist.postprocess.config import PostprocessConfig
from umnist.tables import (
    BOX_COLUMNS,
    DETECTIONS_FILE,
    EMPTY,
    FILTERED_FILE,
    KEPT,
    LOW_PROB,
    NESTED,
    SUBMISSION_FILE,
    check_detections,
    read_detections,
    skipped_images,
)


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


def run(detections: str | os.PathLike | pd.DataFrame, out: str | os.PathLike,
        profile: str | os.PathLike | dict | None = None, **overrides) -> dict:
    """Filter `detections` (infer's output folder, its `detections.parquet`, or the table itself) and write, in
    `out`: `submission.csv` (id,digit_sum, one row per image, sorted by id), `detections_filtered.parquet` and
    `config.yaml`. `profile` None: the settings infer recorded beside the detections (`recorded_profile`).
    Returns its summary: `images`, `digits_kept`, `dropped_nested`, `dropped_low_prob` and `skipped_images`
    (id -> why infer could not read it; its sum is 0).
    """
    if profile is None:
        profile = recorded_profile(detections)
    cfg = config.resolve(PostprocessConfig, "postprocess", profile, **overrides)
    if isinstance(detections, pd.DataFrame):
        check_detections(detections, "detections table")
        table = detections.astype({"image_id": str})
    else:
        path = Path(detections)
        if not path.exists():
            raise UmnistError(f"{path}: no such file or folder (give `umnist infer`'s output folder or its "
                              f"{DETECTIONS_FILE})")
        table = read_detections(path / DETECTIONS_FILE if path.is_dir() else path)
    filtered = filter_detections(table.reset_index(drop=True), cfg)
    sums = digit_sums(filtered, mask=filtered["kept"])
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    with atomic_path(out / SUBMISSION_FILE) as tmp:
        sums.rename_axis("id").reset_index().to_csv(tmp, index=False)
    with atomic_path(out / FILTERED_FILE) as tmp:
        filtered.to_parquet(tmp, index=False)
    config.save(cfg, "postprocess", out, profile)
    reasons = filtered["drop_reason"].value_counts()
    return {"images": int(filtered["image_id"].nunique()), "digits_kept": int(filtered["kept"].sum()),
            **{f"dropped_{reason}": int(reasons.get(reason, 0)) for reason in (NESTED, LOW_PROB)},
            "skipped_images": skipped_images(filtered)}


def recorded_profile(detections: str | os.PathLike | pd.DataFrame) -> str | Path:
    """The profile when none is given: the config.yaml infer wrote beside the detections (it records the floor
    meant for the models it ran, `umnist.infer.model_profile`), else `config.DEFAULT_PROFILE`."""
    if not isinstance(detections, pd.DataFrame):
        path = Path(detections)
        saved = (path if path.is_dir() else path.parent) / "config.yaml"
        if saved.is_file() and "postprocess" in config.load_profile(saved):
            return saved
    return config.DEFAULT_PROFILE
