"""Plumbing the pipeline's components share, kept here (tested, KFP-free) so each component stays a few lines.

A KFP lightweight component is serialised into the compiled YAML as its function's source alone, so every
helper it calls must be importable from the image: that is this module.
"""

import csv
import os
import shutil
import tempfile
from pathlib import Path

import pandas as pd

from umnist import hardware, layout, shards, storage
from umnist.errors import UmnistError
from umnist.fileio import IMAGE_SUFFIXES


def supply_weights(stage: str, weights: str | os.PathLike, model) -> str:
    """A training step given `weights` (a path or object-store URI) instead of training: copy them to where
    `stage`'s training keeps its weights in the KFP `model` artifact (umnist.layout), note their source in its
    metadata; return the stop reason "supplied" (what score's run summary shows for that training)."""
    target = layout.weights(stage, model.path)
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="umnist-weights-") as work:
        shutil.copyfile(storage.fetch(weights, work), target)
    model.metadata["supplied"] = str(weights)
    return "supplied"


def detector_workers(profile: str | os.PathLike | dict) -> int:
    """The profile's detector loader workers, capped at the CPUs this step may use: yolov5 caps them at
    os.cpu_count(), the node's cores in a pod, and each worker holds 2560 px mosaics in /dev/shm."""
    from umnist import config
    from umnist.detector.config import DetectorConfig

    return min(config.resolve(DetectorConfig, "detector", profile).workers,
               hardware.cpu_cores())


def read_confusion(confusion_csv: str | os.PathLike) -> tuple[list[str], list[list[int]]]:
    """The classifier's `confusion.csv` (header `true,0..9`, one row per true digit) as (labels, rows)."""
    with open(confusion_csv, newline="") as fh:
        rows = list(csv.reader(fh))
    if len(rows) < 2 or any(len(row) != len(rows[0]) for row in rows):
        raise UmnistError(f"{confusion_csv}: not a confusion table")
    return rows[0][1:], [[int(v) for v in row[1:]] for row in rows[1:]]


def is_image(name: str) -> bool:
    return name.lower().endswith(IMAGE_SUFFIXES)


def fetch_part(source: str | os.PathLike, part: int, parts: int, dest: str | os.PathLike) -> list[str]:
    """Copy part `part` of `parts` of the images at `source` into the directory `dest`; return their names.

    `source` is a local directory or an object-store prefix holding image files ({id}.jpeg|.jpg|.png), or a
    shard set (umnist.shards: index.json + tar shards), locally or in the store. A shard set is split by
    whole shards (shard k goes to part k mod parts), so each part fetches only its own shards; a plain set
    of files is split by sorted name (file i goes to part i mod parts). A part may be empty.
    """
    if not 0 <= part < parts:
        raise UmnistError(f"part {part} is outside 0..{parts - 1}")
    dest = Path(dest)
    if _is_shard_set(source):
        names = [entry["name"] for entry in shards.read_index(source)["shards"]]
        mine = names[part::parts]
        if not mine:
            dest.mkdir(parents=True, exist_ok=True)
            return []
        return sorted(p.name for p in shards.read_shards(source, dest, shards=mine) if is_image(p.name))
    files = [name for name in storage.list_files(source) if is_image(name) and "/" not in name]
    if not files:
        raise UmnistError(f"{source}: no images ({', '.join(IMAGE_SUFFIXES)}) found")
    mine = files[part::parts]
    dest.mkdir(parents=True, exist_ok=True)
    for name in mine:
        if storage.is_remote(source):
            storage.download(f"{str(source).rstrip('/')}/{name}", dest / name)
        else:
            shutil.copyfile(Path(source) / name, dest / name)
    return mine


def _is_shard_set(source: str | os.PathLike) -> bool:
    if storage.is_remote(source):
        return shards.INDEX in storage.list_files(source)
    return (Path(source) / shards.INDEX).is_file()


def concat_detections(paths: list[str | os.PathLike]) -> pd.DataFrame:
    """One detections table from the parts' Parquet files (docs/formats.md, infer), in part order."""
    if not paths:
        raise UmnistError("no detection tables to collect")
    return pd.concat([pd.read_parquet(p) for p in paths], ignore_index=True)


def last_epoch(metrics_csv: str | os.PathLike) -> dict[str, float]:
    """The numeric columns of a training log's last row (the final losses and scores), for the UI; none when
    no epoch finished (a run whose time budget ended inside its first epoch keeps its weights, and its
    summary.json says why it stopped: the step goes on, as a short run on a slow machine must)."""
    path = Path(metrics_csv)
    rows = []
    if path.is_file():
        with open(path, newline="") as fh:
            rows = list(csv.DictReader(fh))
    if not rows:
        return {}
    numbers = {}
    for key, value in rows[-1].items():
        try:
            numbers[key.strip()] = float(value)
        except (TypeError, ValueError):
            continue
    return numbers


def score_summary(metrics: dict) -> dict[str, float]:
    """The scalars of a score `metrics.json` worth comparing across runs: the sum accuracy ladder and, with
    ground-truth boxes, the detection recall and precision at each level and per digit size bucket
    (`size_32_64_recall_detector`, `size_1024_up_precision_postprocessed`; none for an empty bucket) and the
    wrong images per error cause (`wrong_with_misread`, `wrong_with_only_missed`)."""
    summary = {f"sum_accuracy_{level}": value for level, value in metrics["sum_accuracy"].items()}
    summary["images"] = metrics["images"]
    for level in ("detector", "reclassified", "postprocessed"):
        boxes = (metrics.get("boxes") or {}).get(level) or {}
        for key in ("recall", "precision"):
            if boxes.get(key) is not None:
                summary[f"box_{key}_{level}"] = boxes[key]
        for bucket in (metrics.get("detection_by_size") or {}).get(level) or []:
            name = f"size_{bucket['min_px']}_{bucket['max_px'] or 'up'}"
            for key in ("recall", "precision"):
                summary[f"{name}_{key}_{level}"] = bucket[key]
    causes = metrics.get("error_causes") or {}
    for cause, count in (causes.get("wrong_images_with") or {}).items():
        summary[f"wrong_with_{cause}"] = count
        summary[f"wrong_with_only_{cause}"] = causes["wrong_images_with_only"][cause]
    return {key: float(value) for key, value in summary.items() if value is not None}


def copy_tree(source: str | os.PathLike, dest: str | os.PathLike) -> Path:
    """Copy a directory's contents into `dest` (created; an artifact's path may already exist)."""
    shutil.copytree(source, dest, dirs_exist_ok=True)
    return Path(dest)


def wrong_ids(predictions_dir: str | os.PathLike, labels_csv: str | os.PathLike) -> list[str]:
    """Ids whose predicted sum (postprocess `submission.csv`) differs from the label, sorted; ids without a
    label are skipped (score reports those)."""
    from umnist.tables import SUBMISSION_FILE, read_sums

    predicted = read_sums(Path(predictions_dir) / SUBMISSION_FILE)
    truth = read_sums(labels_csv).reindex(predicted.index)
    return sorted(str(i) for i in predicted.index[truth.notna().to_numpy() & (truth != predicted).to_numpy()])


def fetch_named(source: str | os.PathLike, ids: list[str], dest: str | os.PathLike) -> Path:
    """Copy the images of the given ids (any of IMAGE_SUFFIXES) from `source` (as in `fetch_part`) into the
    directory `dest`, fetching only the shards or files that hold them; return `dest`."""
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    wanted = set(ids)
    if _is_shard_set(source):
        holding = [entry["name"] for entry in shards.read_index(source)["shards"]
                   if any(Path(member).stem in wanted for member in entry["members"])]
        for name, data in shards.iter_shards(source, holding) if holding else ():
            if Path(name).stem in wanted and is_image(name):
                (dest / Path(name).name).write_bytes(data)
        return dest
    for name in storage.list_files(source):
        if "/" in name or not is_image(name) or Path(name).stem not in wanted:
            continue
        if storage.is_remote(source):
            storage.download(f"{str(source).rstrip('/')}/{name}", dest / name)
        else:
            shutil.copyfile(Path(source) / name, dest / name)
    return dest
