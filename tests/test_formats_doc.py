"""docs/formats.md names every column of every table the stages write, in the section of the stage that writes
it, so the document cannot drift from the code: a column added to a table fails here until it is documented."""

import json
import re
from pathlib import Path

import pytest
from tables import detection, empty, table

from umnist import postprocess, score, tables
from umnist.classifier.train import METRICS_FIELDS
from umnist.detector.training import METRICS_COLUMNS

DOC = Path(__file__).resolve().parents[1] / "docs" / "formats.md"


def section_text(section: str) -> str:
    """The text of the `## {section} ...` section of docs/formats.md."""
    parts = re.split(r"^## ", DOC.read_text(), flags=re.MULTILINE)
    text = next((p for p in parts if p.startswith(f"{section} ")), None)
    assert text is not None, f"docs/formats.md has no '## {section}' section"
    return text


def documented_names(section: str) -> set[str]:
    """The names in backticks (`a`, `a,b,c`, `x1 y1`, `p0`..`p9`) of the `## {section} ...` section."""
    text = section_text(section)
    names = {name for span in re.findall(r"`([^`]*)`", text) for name in re.findall(r"\w+", span)}
    for stem, low, high in re.findall(r"`([a-z_]+)(\d+)`\.\.`\1(\d+)`", text):  # `p0`..`p9`
        names |= {f"{stem}{k}" for k in range(int(low), int(high) + 1)}
    return names


@pytest.mark.parametrize("section, columns", [
    ("infer", tables.DETECTIONS_SCHEMA.names),
    ("postprocess", tables.FILTERED_COLUMNS),
    ("postprocess", tables.SUMS_COLUMNS),
    ("synth", tables.SUMS_COLUMNS),
    ("synth", tables.BOXES_COLUMNS),
    ("score", tables.SUMS_COLUMNS),
    ("score", tables.BOXES_COLUMNS),
    ("train-detector", METRICS_COLUMNS),
    ("train-classifier", METRICS_FIELDS),
], ids=lambda value: value if isinstance(value, str) else None)
def test_every_column_is_documented(section, columns):
    missing = [c for c in columns if c not in documented_names(section)]
    assert not missing, f"docs/formats.md, section '{section}': not documented: {missing}"


def test_every_drop_reason_is_documented():
    spans = set(re.findall(r"`([^`]*)`", section_text("postprocess")))
    reasons = [reason or '""' for reason in (tables.KEPT, tables.NESTED, tables.LOW_PROB, tables.EMPTY)]
    assert [r for r in reasons if r not in spans] == []


def test_every_metrics_key_is_documented(tmp_path):
    postprocess.run(table(detection("a", (0, 0, 10, 10), 3), empty("b")), tmp_path / "pred")
    (tmp_path / "labels.csv").write_text("id,digit_sum\na,3\nb,0\n")
    (tmp_path / "boxes.csv").write_text("id,digit,x1,y1,x2,y2\na,3,0,0,10,10\n")
    score.run(tmp_path / "pred", tmp_path / "labels.csv", tmp_path / "out", boxes=tmp_path / "boxes.csv")
    metrics = json.loads((tmp_path / "out" / "metrics.json").read_text())
    keys = set(metrics) | set(metrics["boxes"]) | set(metrics["boxes"]["detector"])
    keys |= set(metrics["detection_by_size"]) | set(metrics["detection_by_size"]["detector"][0])
    keys |= set(metrics["per_sum"][0])
    missing = sorted(keys - documented_names("score"))
    assert not missing, f"docs/formats.md, section 'score': metrics.json keys not documented: {missing}"
