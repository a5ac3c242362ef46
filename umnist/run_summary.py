"""A short Markdown summary of a pipeline run for the Kubeflow UI's run comparison: the accuracy ladder,
detection recall (by digit size when score has the true boxes) and why each training stopped.

Reads score's `metrics.json` defensively: keys another version of score may lack or add are shown when
present and skipped when not.
"""

import json
import os
from pathlib import Path

LEVELS = ("detector", "reclassified", "postprocessed")


def _percent(value) -> str:
    return f"{100 * value:.2f} %" if isinstance(value, int | float) else "—"


def markdown(metrics: dict, stop_reasons: dict[str, str]) -> str:
    """`metrics`: score's metrics.json; `stop_reasons`: training step -> why it stopped ("supplied" weights)."""
    accuracy, boxes = metrics.get("sum_accuracy") or {}, metrics.get("boxes") or {}
    lines = [f"## umnist run: {metrics.get('images', '?')} images", "",
             "| level | sum accuracy | box recall | box precision |", "|---|---|---|---|"]
    for level in LEVELS:
        found = boxes.get(level) or {}
        lines.append(f"| {level} | {_percent(accuracy.get(level))} | {_percent(found.get('recall'))} "
                     f"| {_percent(found.get('precision'))} |")
    by_size = metrics.get("detection_by_size") or {}
    rows = {level: {row["bucket"]: row for row in by_size.get(level) or []} for level in ("detector", "postprocessed")}
    buckets = [bucket for bucket, row in rows["detector"].items() if row.get("true")]
    if buckets:
        lines += ["", "| digit side (px) | digits | detector recall | recall after postprocess |", "|---|---|---|---|"]
        for bucket in buckets:
            kept = rows["postprocessed"].get(bucket) or {}
            lines.append(f"| {bucket} | {rows['detector'][bucket]['true']} | "
                         f"{_percent(rows['detector'][bucket].get('recall'))} | {_percent(kept.get('recall'))} |")
    if stop_reasons:
        lines += ["", "| training | stopped by |", "|---|---|"]
        lines += [f"| {step} | {reason or '—'} |" for step, reason in stop_reasons.items()]
    skipped = metrics.get("skipped_images")
    if skipped:
        lines += ["", f"{len(skipped)} unreadable images skipped (counted wrong)."]
    return "\n".join(lines) + "\n"


def stop_reason(summary_json: str | os.PathLike) -> str:
    """Why a training run stopped, from its summary.json ("" when it has none)."""
    path = Path(summary_json)
    return str(json.loads(path.read_text()).get("stop_reason", "")) if path.is_file() else ""
