"""The tables the prediction stages pass on (docs/formats.md): their columns, types, values, and readers.

- detections (`detections.parquet`, written by infer): a row per detection, and an `empty` row per image
  without one, so no id is lost;
- filtered detections (`detections_filtered.parquet`, written by postprocess): the detections plus `kept` and
  `drop_reason`;
- sums (`id,digit_sum`: the competition's train.csv, synth's `{split}_sums.csv`, postprocess's
  `submission.csv`) and boxes (`id,digit,x1,y1,x2,y2`: synth's `{split}_boxes.csv`, the ground truth score reads).

Every reader checks its table and raises UmnistError in one line naming the file and the problem.
"""

import csv
import os
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from umnist.errors import UmnistError
from umnist.labels import MAX_DIGIT_SUM, NUM_CLASSES

# The files the prediction stages write in their output folders.
DETECTIONS_FILE = "detections.parquet"  # infer
FILTERED_FILE = "detections_filtered.parquet"  # postprocess
SUBMISSION_FILE = "submission.csv"  # postprocess

BOX_COLUMNS = ["x1", "y1", "x2", "y2"]  # pixels of the original image
PROB_COLUMNS = [f"p{d}" for d in range(NUM_CLASSES)]  # averaged TTA probability of each digit
NO_DIGIT = -1  # det_class and cls_digit of an empty row (its floats are NaN)
DETECTIONS_SCHEMA = pa.schema([
    ("image_id", pa.string()), ("empty", pa.bool_()),
    *[(c, pa.float32()) for c in BOX_COLUMNS],
    ("det_conf", pa.float32()), ("det_class", pa.int16()), ("cls_digit", pa.int16()), ("cls_prob", pa.float32()),
    *[(c, pa.float32()) for c in PROB_COLUMNS],
    ("width", pa.int32()), ("height", pa.int32()), ("error", pa.string()),
])
# The columns post-processing and scoring need: a table without the probabilities, sizes or `error` (written
# by hand, or before `error` existed) is still read.
REQUIRED_COLUMNS = ["image_id", "empty", *BOX_COLUMNS, "det_conf", "det_class", "cls_digit", "cls_prob"]

# Filtered detections: the detections plus these columns; `drop_reason` is one of the four values below.
FILTERED_COLUMNS = ["kept", "drop_reason"]
KEPT, NESTED, LOW_PROB, EMPTY = "", "nested", "low_prob", "empty"

SUMS_COLUMNS = ["id", "digit_sum"]
BOXES_COLUMNS = ["id", "digit", *BOX_COLUMNS]
INTEGER = re.compile(r"[+-]?\d+")


def write_empty_detections(path: str | os.PathLike) -> None:
    """A detections file without rows, with the types of infer's (the table of a pipeline part without images)."""
    pq.write_table(DETECTIONS_SCHEMA.empty_table(), path)


def check_detections(table: pd.DataFrame, name: str) -> None:
    """One-line errors for a detections table that breaks the documented format; `name` names it in them."""
    missing = [c for c in REQUIRED_COLUMNS if c not in table.columns]
    if missing:
        raise UmnistError(f"{name}: missing column(s) {', '.join(missing)}")
    if table["image_id"].isna().any():
        raise UmnistError(f"{name}: {int(table['image_id'].isna().sum())} row(s) without image_id")
    empty = table["empty"].to_numpy(bool)
    mixed = sorted(set(table.loc[empty, "image_id"]) & set(table.loc[~empty, "image_id"]))
    if mixed:
        raise UmnistError(f"{name}: {len(mixed)} image(s) have an empty row and detections, e.g. {mixed[:3]}")
    doubled = table.loc[empty, "image_id"]
    doubled = doubled[doubled.duplicated()]
    if len(doubled):
        raise UmnistError(f"{name}: image {doubled.iloc[0]!r} has several empty rows")
    det = table.loc[~empty]
    x1, y1, x2, y2 = (det[c].to_numpy(np.float64) for c in BOX_COLUMNS)
    problems = {
        "a box that is not finite or has x2 < x1 or y2 < y1": ~(np.isfinite([x1, y1, x2, y2]).all(0)
                                                                & (x2 >= x1) & (y2 >= y1)),
        f"cls_digit or det_class outside 0..{NUM_CLASSES - 1}": ~(det["cls_digit"].between(0, NUM_CLASSES - 1)
                                                                 & det["det_class"].between(0, NUM_CLASSES - 1)),
        "cls_prob outside 0..1": ~det["cls_prob"].between(0, 1),
    }
    for what, bad in problems.items():
        if np.any(bad):
            example = det["image_id"].iloc[int(np.argmax(bad))]
            raise UmnistError(f"{name}: {int(np.sum(bad))} detection(s) with {what}, e.g. image {example!r}")


def read_detections(path: str | os.PathLike) -> pd.DataFrame:
    """A detections table (filtered or not) from its Parquet file, checked, with `image_id` as str."""
    path = Path(path)
    if not path.is_file():
        raise UmnistError(f"{path}: detections file not found")
    try:
        table = pd.read_parquet(path)
    except Exception as exc:  # pyarrow raises several types for a file that is not Parquet
        raise UmnistError(f"{path}: not a readable Parquet file ({str(exc).splitlines()[0]})") from None
    check_detections(table, str(path))
    return table.astype({"image_id": str})


def skipped_images(table: pd.DataFrame) -> dict[str, str]:
    """Image id -> why infer could not read it (policy bad_images=skip: an empty row, so sum 0), sorted by id.
    Tables without the `error` column (written before it existed, or by hand) have none."""
    if "error" not in table.columns:
        return {}
    rows = table.loc[table["error"].fillna("").astype(str) != ""]
    return dict(sorted(zip(rows["image_id"].astype(str), rows["error"].astype(str), strict=True)))


def id_examples(ids) -> str:
    """The first three of some ids, sorted, for an error message ('a, b, c, ...')."""
    ids = sorted(ids)
    return ", ".join(map(str, ids[:3])) + (", ..." if len(ids) > 3 else "")


def read_rows(path: str | os.PathLike, header: list[str]) -> list[tuple[int, list[str]]]:
    """(line number, fields) of a CSV whose first line must be `header`; each row must have its width."""
    path = Path(path)
    if not path.is_file():
        raise UmnistError(f"{path}: file not found")
    with open(path, newline="", encoding="utf-8-sig") as fh:
        rows = list(csv.reader(fh))
    if not rows or [h.strip() for h in rows[0]] != header:
        got = ",".join(rows[0]) if rows else "an empty file"
        raise UmnistError(f"{path}: header must be '{','.join(header)}', got {got!r}")
    for line, row in enumerate(rows[1:], start=2):
        if len(row) != len(header):
            raise UmnistError(f"{path}: line {line} has {len(row)} field(s), expected {len(header)} "
                              f"({','.join(header)}): {','.join(row)!r}")
        if not row[0].strip():
            raise UmnistError(f"{path}: line {line} has an empty id")
    return [(line, [f.strip() for f in row]) for line, row in enumerate(rows[1:], start=2)]


def read_sums(path: str | os.PathLike) -> pd.Series:
    """`id,digit_sum` CSV (train.csv, submission.csv) -> Series of int sums indexed by id, sorted by id."""
    ids, sums = [], []
    for line, (image_id, value) in read_rows(path, SUMS_COLUMNS):
        if not INTEGER.fullmatch(value):
            raise UmnistError(f"{path}: line {line}: digit_sum {value!r} is not an integer")
        if not 0 <= int(value) <= MAX_DIGIT_SUM:
            raise UmnistError(f"{path}: line {line}: digit_sum {value} is outside 0..{MAX_DIGIT_SUM}")
        ids.append(image_id)
        sums.append(int(value))
    if not ids:
        raise UmnistError(f"{path}: no rows")
    table = pd.Series(sums, index=pd.Index(ids, name="id"), name="digit_sum", dtype=np.int64)
    duplicated = table.index[table.index.duplicated()].unique()
    if len(duplicated):
        raise UmnistError(f"{path}: {len(duplicated)} duplicate id(s), e.g. {id_examples(duplicated)}")
    return table.sort_index()


def read_boxes(path: str | os.PathLike) -> pd.DataFrame:
    """Ground-truth boxes `id,digit,x1,y1,x2,y2` (pixels of the original image) as a table with columns
    image_id, digit, x1, y1, x2, y2."""
    records = []
    for line, (image_id, digit, *coords) in read_rows(path, BOXES_COLUMNS):
        if not INTEGER.fullmatch(digit) or not 0 <= int(digit) < NUM_CLASSES:
            raise UmnistError(f"{path}: line {line}: digit {digit!r} is not an integer 0..{NUM_CLASSES - 1}")
        try:
            x1, y1, x2, y2 = (float(c) for c in coords)
        except ValueError:
            raise UmnistError(f"{path}: line {line}: box {','.join(coords)!r} is not four numbers") from None
        if not (np.isfinite([x1, y1, x2, y2]).all() and x2 > x1 and y2 > y1):
            raise UmnistError(f"{path}: line {line}: box {','.join(coords)!r} needs x1 < x2 and y1 < y2")
        records.append((image_id, int(digit), x1, y1, x2, y2))
    return pd.DataFrame(records, columns=["image_id", "digit", *BOX_COLUMNS])
