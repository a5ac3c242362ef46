"""The HTML score report: one self-contained file (images embedded as base64 JPEG).

The ladder of sum accuracies, box metrics (overall and per digit size) when ground truth was given, accuracy
per true sum, the confusion matrix, and the gallery of WRONG images: each downscaled, with every detection drawn
(kept digits in green with digit and probability, dropped ones in red or orange with the reason), the true
digits no detection found (magenta, with ground truth), the true and predicted sums.
Looking at these is how the winning solution found its filters and augmentations. Every text is escaped.
"""

import base64
import html
import os
from pathlib import Path

import cv2
import numpy as np
import pandas as pd

from umnist.fileio import IMAGE_SUFFIXES, write_text
from umnist.labels import MAX_DIGIT_SUM
from umnist.tables import BOX_COLUMNS, KEPT, NESTED

GALLERY_SIDE = 512
JPEG_QUALITY = 80
COLOURS = {KEPT: (40, 170, 40), NESTED: (0, 140, 255)}  # BGR; anything else dropped is red
DROPPED_COLOUR = (30, 30, 220)
MISSED_COLOUR = (220, 40, 220)  # magenta: apart from the detections' green, orange and red
LEGEND = [("kept digit", COLOURS[KEPT]), ("dropped: nested", COLOURS[NESTED]),
          ("dropped: low_prob", DROPPED_COLOUR)]
STYLE = """
body{font-family:sans-serif;margin:1.5em;color:#222} table{border-collapse:collapse;margin:.5em 0 1.5em}
td,th{border:1px solid #ccc;padding:2px 6px;text-align:right} th{background:#f0f0f0}
.cm td{width:1.6em;font-size:80%} .cm .diag{background:#dfd} .cm .off{background:#fdd}
.card{display:inline-block;vertical-align:top;margin:6px;padding:6px;border:1px solid #ccc;width:520px}
.card img{display:block} .card p{margin:4px 0;font-size:90%} .left-out{color:#a00}
.legend span{display:inline-block;margin-right:1.2em} .legend b{display:inline-block;width:1.6em;height:.8em;
border:2px solid;margin-right:.3em;vertical-align:middle}
"""


def _percent(value) -> str:
    return "—" if value is None else f"{100 * value:.2f} %"


def _table(header: list[str], rows: list[list], cls: str = "") -> str:
    head = "".join(f"<th>{html.escape(str(h))}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in row) + "</tr>" for row in rows)
    return f'<table class="{cls}"><tr>{head}</tr>{body}</table>'


def find_image(images_dir: Path, image_id: str) -> Path | None:
    for suffix in IMAGE_SUFFIXES:
        if (images_dir / f"{image_id}{suffix}").is_file():
            return images_dir / f"{image_id}{suffix}"
    return None


def read_downscaled(path: Path, side: int) -> tuple[np.ndarray, float] | None:
    """The image as BGR, its longer side at most `side`, and the factor from original pixels to it.

    JPEGs decode directly at 1/2, 1/4 or 1/8 size: a look at 1/8 gives the size, then the smallest decode
    that still leaves `side` pixels is used, a fraction of the cost of a full 4000 px decode.
    """
    reduced = {1: cv2.IMREAD_GRAYSCALE, 2: cv2.IMREAD_REDUCED_GRAYSCALE_2, 4: cv2.IMREAD_REDUCED_GRAYSCALE_4,
               8: cv2.IMREAD_REDUCED_GRAYSCALE_8}
    probe = cv2.imread(str(path), reduced[8])
    if probe is None:
        return None
    original_side = 8 * max(probe.shape)
    factor = max([k for k in reduced if original_side // k >= side] or [1])
    image = probe if factor == 8 else cv2.imread(str(path), reduced[factor])
    height, width = image.shape
    shrink = min(1.0, side / max(height, width))
    image = cv2.resize(image, (round(width * shrink), round(height * shrink)), interpolation=cv2.INTER_AREA)
    return cv2.cvtColor(image, cv2.COLOR_GRAY2BGR), shrink / factor


def _draw_box(image: np.ndarray, box: tuple[int, int, int, int], colour, thickness: int, label: str) -> None:
    x1, y1, x2, y2 = box
    cv2.rectangle(image, (x1, y1), (x2, y2), colour, thickness)
    (width, height), _ = cv2.getTextSize(label, cv2.FONT_HERSHEY_SIMPLEX, 0.4, 1)
    # on a black patch (readable on any ground), above the box, or below it at the top edge
    top = y1 - height - 6 if y1 >= height + 6 else y2
    cv2.rectangle(image, (x1, top), (x1 + width + 4, top + height + 6), (0, 0, 0), -1)
    cv2.putText(image, label, (x1 + 2, top + height + 2), cv2.FONT_HERSHEY_SIMPLEX, 0.4, colour, 1, cv2.LINE_AA)


def _scaled(row, scale: float) -> tuple[int, int, int, int]:
    return tuple(int(round(getattr(row, c) * scale)) for c in BOX_COLUMNS)


def draw_detections(image: np.ndarray, scale: float, detections: pd.DataFrame,
                    missed: pd.DataFrame | None = None) -> np.ndarray:
    """Every box with `digit prob` (kept, thick) or `digit prob reason` (dropped, thin, another colour), and
    each missed true digit (`missed`: image_id, digit, x1..y2) as `missed digit` in magenta."""
    for row in detections.itertuples(index=False):
        kept = row.drop_reason == KEPT
        label = f"{row.cls_digit} {row.cls_prob:.2f}" + ("" if kept else f" {row.drop_reason}")
        _draw_box(image, _scaled(row, scale), COLOURS.get(row.drop_reason, DROPPED_COLOUR), 2 if kept else 1, label)
    for row in missed.itertuples(index=False) if missed is not None else ():
        _draw_box(image, _scaled(row, scale), MISSED_COLOUR, 2, f"missed {row.digit}")
    return image


def _legend(with_missed: bool) -> str:
    entries = LEGEND + ([("missed true digit (no detector box matches it)", MISSED_COLOUR)] if with_missed else [])
    spans = "".join(f'<span><b style="border-color:rgb({r},{g},{b})"></b>{html.escape(name)}</span>'
                    for name, (b, g, r) in entries)
    return f'<p class="legend">{spans}</p>'


def _card(image_id: str, sums: pd.Series, detections: pd.DataFrame, images_dir: Path | None,
          missed: pd.DataFrame | None) -> str:
    picture = ""
    if images_dir is not None:
        path = find_image(images_dir, image_id)
        loaded = read_downscaled(path, GALLERY_SIDE) if path else None
        if loaded is None:
            picture = f"<p>no readable image {html.escape(image_id)}.jpeg/.jpg/.png in the images folder</p>"
        else:
            image = draw_detections(*loaded, detections, missed)
            ok, jpeg = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
            picture = f'<img alt="{html.escape(image_id)}" src="data:image/jpeg;base64,' \
                      f'{base64.b64encode(jpeg.tobytes()).decode()}">'
    boxes = "; ".join(f"{r.cls_digit} ({r.cls_prob:.2f}, detector {r.det_class} at {r.det_conf:.2f})"
                      + ("" if r.drop_reason == KEPT else f" {r.drop_reason}")
                      for r in detections.itertuples(index=False)) or "no detection"
    if missed is not None and len(missed):
        boxes += "; missed true digit(s): " + ", ".join(
            f"{r.digit} at ({r.x1:.0f}, {r.y1:.0f}, {r.x2:.0f}, {r.y2:.0f})" for r in missed.itertuples(index=False))
    return (f'<div class="card"><p><b>{html.escape(image_id)}</b>: true {sums["true"]}, predicted '
            f'{sums["postprocessed"]} (detector {sums["detector"]}, re-classified {sums["reclassified"]})</p>'
            f"{picture}<p>{html.escape(boxes)}</p></div>")


def render(metrics: dict, sums: pd.DataFrame, detections: pd.DataFrame, images_dir: str | os.PathLike | None,
           gallery_limit: int, missed: pd.DataFrame | None = None) -> str:
    """The report as one HTML string. `sums` holds, per image id, the true and the three predicted sums;
    `missed` the true boxes no detection matched (None without ground-truth boxes)."""
    ladder = [[level, metrics["correct"][level], metrics["images"], _percent(acc)]
              for level, acc in metrics["sum_accuracy"].items()]
    parts = ["<h2>Sum accuracy</h2>", _table(["level", "correct", "images", "accuracy"], ladder)]
    if metrics["boxes"]:
        boxes = metrics["boxes"]
        rows = [[level, boxes[level]["detections"], boxes[level]["matched"], _percent(boxes[level]["recall"]),
                 _percent(boxes[level]["precision"]), _percent(boxes[level]["digit_accuracy"])]
                for level in metrics["sum_accuracy"]]
        parts += [f"<h2>Boxes (IoU ≥ {boxes['iou_threshold']}, {boxes['ground_truth_boxes']} true ones)</h2>",
                  _table(["level", "detections", "matched", "recall", "precision", "digit accuracy"], rows)]
    if metrics.get("detection_by_size"):
        parts += _size_table(metrics["detection_by_size"])
    if metrics.get("error_causes"):
        parts += _causes_table(metrics["error_causes"])
    per_sum = [[s["sum"], s["images"], s["correct"], _percent(s["accuracy"])] for s in metrics["per_sum"]]
    parts += ["<h2>Accuracy per true sum (after post-processing)</h2>",
              _table(["sum", "images", "correct", "accuracy"], per_sum)]
    parts += ["<h2>Confusion matrix (rows: true sum, columns: predicted sum)</h2>",
              _confusion(metrics["confusion"])]
    skipped = metrics.get("skipped_images") or {}
    if skipped:
        parts += [f'<h2 class="left-out">Unreadable images skipped by infer (predicted sum 0): {len(skipped)}</h2>',
                  _table(["image", "error"], [[i, e] for i, e in skipped.items()])]
    wrong = metrics["wrong_ids"]
    shown = wrong[:gallery_limit]
    parts.append(f"<h2>Wrong images: {len(wrong)}</h2>")
    if len(wrong) > len(shown):
        parts.append(f'<p class="left-out">{len(wrong) - len(shown)} more wrong image(s) left out '
                     f"(gallery limit {gallery_limit}; every wrong id is in metrics.json)</p>")
    if shown:
        parts.append(_legend(missed is not None))
    by_image = detections.loc[~detections["empty"].to_numpy(bool)].groupby("image_id")
    groups = {k: by_image.get_group(k) for k in shown if k in by_image.groups}
    missed_by_image = {} if missed is None else dict(tuple(missed.groupby("image_id")))
    directory = None if images_dir is None else Path(images_dir)
    empty = detections.iloc[:0]
    parts += [_card(i, sums.loc[i], groups.get(i, empty), directory,
                    None if missed is None else missed_by_image.get(i, missed.iloc[:0])) for i in shown]
    return (f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>umnist score</title>"
            f"<style>{STYLE}</style></head><body><h1>umnist score: {metrics['images']} images</h1>"
            + "\n".join(parts) + "</body></html>\n")


def _size_table(by_size: dict) -> list[str]:
    """Recall and precision per size bucket, of all detector boxes and of the kept ones, side by side."""
    rows = [[every["bucket"], every["true"], every["found"], _percent(every["recall"]), every["predicted"],
             _percent(every["precision"]), kept["found"], _percent(kept["recall"]), kept["predicted"],
             _percent(kept["precision"])]
            for every, kept in zip(by_size["detector"], by_size["postprocessed"], strict=True)]
    header = ["size (px)", "true", "found", "recall", "boxes", "precision", "kept found", "kept recall",
              "kept boxes", "kept precision"]
    return [f"<h2>Detection by digit size (longer side of the true box, original pixels)</h2><p>A box matches "
            f"a true digit when their intersection covers ≥ {by_size['cover_threshold']:.0%} of the smaller of "
            f"the two and their longer sides differ by at most {1 / by_size['side_ratio']:g}x (so an ink box "
            f"matches its digit's square cell). An unmatched box counts in the bucket of its own size.</p>",
            _table(header, rows)]


CAUSE_TEXT = {"missed": "a true digit no detector box found", "dropped": "a found digit dropped by post-processing",
              "false": "a kept box on no digit", "misread": "a kept digit read as another"}


def _causes_table(causes: dict) -> list[str]:
    """Why the wrong sums are wrong: digits of each cause, wrong images with it, and with it alone."""
    rows = [[text, causes["digits"][cause], causes["wrong_images_with"][cause],
             causes["wrong_images_with_only"][cause]] for cause, text in CAUSE_TEXT.items()]
    return [f"<h2>Why {causes['wrong_images']} sums are wrong</h2>",
            _table(["cause", "digits", "wrong images with it", "with it alone"], rows)]


def _confusion(confusion: list[list[int]]) -> str:
    head = "<tr><th></th>" + "".join(f"<th>{p}</th>" for p in range(MAX_DIGIT_SUM + 1)) + "</tr>"
    rows = []
    for t, counts in enumerate(confusion):
        cells = "".join(f'<td class="{"diag" if t == p else "off" if n else ""}">{n or ""}</td>'
                        for p, n in enumerate(counts))
        rows.append(f"<tr><th>{t}</th>{cells}</tr>")
    return f'<table class="cm">{head}{"".join(rows)}</table>'


def write_report(path: str | os.PathLike, metrics: dict, sums: pd.DataFrame, detections: pd.DataFrame,
                 images_dir: str | os.PathLike | None, gallery_limit: int, missed: pd.DataFrame | None = None) -> Path:
    return write_text(path, render(metrics, sums, detections, images_dir, gallery_limit, missed))
