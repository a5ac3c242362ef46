"""umnist.tables: the one home of the detections table's format, used by every stage that reads or writes it."""

import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from tables import detection, table

from umnist import steps, tables
from umnist.errors import UmnistError

ROOT = Path(__file__).resolve().parents[1]


def test_an_empty_part_has_the_infer_types_and_keeps_them_in_the_collected_table(tmp_path):
    """A pipeline part without images writes no rows but infer's types: concatenated with the other parts,
    the columns keep their types (an untyped empty part turned them into Python objects)."""
    tables.write_empty_detections(tmp_path / "empty.parquet")
    assert pq.read_schema(tmp_path / "empty.parquet").remove_metadata() == tables.DETECTIONS_SCHEMA
    full = pa.Table.from_pandas(table(detection("a", (0, 0, 10, 10), 3)).assign(error=""), preserve_index=False)
    pq.write_table(full.select(tables.DETECTIONS_SCHEMA.names).cast(tables.DETECTIONS_SCHEMA), tmp_path / "a.parquet")
    collected = steps.concat_detections([tmp_path / "empty.parquet", tmp_path / "a.parquet"])
    assert collected["x1"].dtype == "float32" and collected["cls_digit"].dtype == "int16"
    tables.check_detections(collected, "collected")


def test_reading_names_the_file(tmp_path):
    with pytest.raises(UmnistError, match="nope.parquet: detections file not found"):
        tables.read_detections(tmp_path / "nope.parquet")
    table(detection("a", (0, 0, 10, 10), 3)).drop(columns="cls_prob").to_parquet(tmp_path / "d.parquet")
    with pytest.raises(UmnistError, match=r"d.parquet: missing column\(s\) cls_prob"):
        tables.read_detections(tmp_path / "d.parquet")


def test_infer_does_not_import_a_later_stage():
    code = f"import sys; sys.path.insert(0, {str(ROOT)!r}); import umnist.infer; print(sorted(sys.modules))"
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert "'umnist.postprocess'" not in loaded and "'umnist.score'" not in loaded
