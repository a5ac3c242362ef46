import numpy as np
import pandas as pd
import pytest
from tables import detection, empty, table

from umnist import config
from umnist.cli import main
from umnist.errors import UmnistError
from umnist.postprocess import (
    PostprocessConfig,
    apply_probability_floor,
    digit_sums,
    filter_detections,
    nested_box_filter,
    run,
)

BIG = (0, 0, 100, 100)


@pytest.mark.parametrize("boxes, probs, keep", [
    ([BIG, (10, 10, 20, 20)], [0.9, 0.99], [True, False]),                 # small inside big: small goes
    ([(10, 10, 20, 20), BIG], [0.99, 0.9], [False, True]),                 # whatever the row order
    ([(0, 0, 10, 10), (10, 0, 20, 10)], [0.9, 0.9], [True, True]),         # sharing an edge: not nested
    ([(0, 0, 10, 10), (0, 10, 10, 20)], [0.9, 0.9], [True, True]),         # sharing a horizontal edge
    ([(0, 0, 10, 10), (5, 5, 15, 15)], [0.9, 0.9], [True, True]),          # partial overlap
    ([BIG, BIG], [0.6, 0.9], [False, True]),                               # equal: higher prob survives
    ([BIG, BIG], [0.9, 0.6], [True, False]),
    ([BIG, BIG], [0.7, 0.7], [True, False]),                               # equal and same prob: earlier row
    ([BIG, BIG, BIG], [0.5, 0.9, 0.7], [False, True, False]),              # exactly one of three survives
    ([BIG, (10, 10, 50, 50), (20, 20, 30, 30)], [0.9, 0.9, 0.9], [True, False, False]),  # nested chain
    ([(0, 0, 10, 10), (5, 0, 20, 10)], [0.9, 0.9], [True, True]),          # half inside (0.5): kept
    ([BIG, (0, 0, 100.05, 10)], [0.9, 0.9], [True, False]),                # 99.95 % inside: dropped
    ([BIG, (50, 50, 50, 60)], [0.9, 0.9], [True, False]),                  # zero-area box within: dropped
    ([BIG, (150, 50, 150, 60)], [0.9, 0.9], [True, True]),                 # zero-area box outside: kept
    ([BIG], [0.9], [True]),
    (np.zeros((0, 4)), [], []),
])
def test_nested_box_filter(boxes, probs, keep):
    assert nested_box_filter(np.array(boxes), np.array(probs)).tolist() == keep


def test_nested_threshold_is_strict():
    half_inside = np.array([(0, 0, 10, 10), (5, 0, 20, 10)])     # intersection / smaller area = 0.5 exactly
    assert nested_box_filter(half_inside, [0.9, 0.9], threshold=0.5).all()
    assert nested_box_filter(half_inside, [0.9, 0.9], threshold=0.49).tolist() == [False, True]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_probability_floor_keeps_exactly_the_floor(dtype):
    probs = np.array([0.4499, 0.45, 0.4501, 0.0, 1.0], dtype=dtype)
    assert apply_probability_floor(probs, 0.45).tolist() == [False, True, True, False, True]


def scenes() -> pd.DataFrame:
    """One image per case, ids deliberately out of order."""
    return table(
        detection("f_clamped", (0, 0, 10, 10), 9), detection("f_clamped", (20, 0, 30, 10), 9),
        detection("f_clamped", (40, 0, 50, 10), 9), detection("f_clamped", (60, 0, 70, 10), 9),
        empty("c_empty"),
        detection("a_nested", BIG, 7, prob=0.9), detection("a_nested", (10, 10, 20, 20), 1, prob=0.99),
        # the outer box is dropped by the floor, the inner one was already dropped as nested: nothing left
        detection("b_inside_dropped", BIG, 8, prob=0.3), detection("b_inside_dropped", (10, 10, 20, 20), 2),
        detection("e_floor", (0, 0, 10, 10), 3, prob=0.45),
        detection("e_floor", (20, 0, 30, 10), 4, prob=0.4499),
        detection("d_equal", BIG, 5, prob=0.6), detection("d_equal", BIG, 6, prob=0.95),
        detection("g_touching", (0, 0, 10, 10), 2), detection("g_touching", (10, 0, 20, 10), 3),
        # nested AND below the floor: nested is checked first, so that is the reason given
        detection("h_nested_low", BIG, 1), detection("h_nested_low", (10, 10, 20, 20), 5, prob=0.1),
    )


EXPECTED_SUMS = {"a_nested": 7, "b_inside_dropped": 0, "c_empty": 0, "d_equal": 6, "e_floor": 3,
                 "f_clamped": 27, "g_touching": 5, "h_nested_low": 1}


def test_filter_reasons():
    filtered = filter_detections(scenes(), PostprocessConfig())
    reasons = filtered.groupby("image_id")["drop_reason"].apply(list).to_dict()
    assert reasons == {
        "a_nested": ["", "nested"], "b_inside_dropped": ["low_prob", "nested"], "c_empty": ["empty"],
        "d_equal": ["nested", ""], "e_floor": ["", "low_prob"], "f_clamped": ["", "", "", ""],
        "g_touching": ["", ""], "h_nested_low": ["", "nested"],
    }
    assert (filtered["kept"] == (filtered["drop_reason"] == "")).all()


def test_digit_sums_cover_every_id_sorted_and_clamped():
    filtered = filter_detections(scenes(), PostprocessConfig())
    sums = digit_sums(filtered, mask=filtered["kept"])
    assert sums.to_dict() == EXPECTED_SUMS and list(sums.index) == sorted(EXPECTED_SUMS)
    assert digit_sums(filtered)["a_nested"] == 8                       # all detections, no filter


@pytest.mark.parametrize("given", ["infer's folder", "its file"])
def test_run_writes_outputs(tmp_path, given):
    source = tmp_path / "detections.parquet"
    scenes().to_parquet(source)
    summary = run(tmp_path if given == "infer's folder" else source, tmp_path / "out")
    filtered = filter_detections(scenes(), PostprocessConfig())
    reasons = filtered["drop_reason"].value_counts()
    assert summary == {"images": len(EXPECTED_SUMS), "digits_kept": int(filtered["kept"].sum()),
                       "dropped_nested": reasons["nested"], "dropped_low_prob": reasons["low_prob"],
                       "skipped_images": {}}
    submission = pd.read_csv(tmp_path / "out" / "submission.csv", dtype={"id": str})
    assert list(submission.columns) == ["id", "digit_sum"]
    assert dict(zip(submission["id"], submission["digit_sum"], strict=True)) == EXPECTED_SUMS
    assert list(submission["id"]) == sorted(EXPECTED_SUMS)
    written = pd.read_parquet(tmp_path / "out" / "detections_filtered.parquet")
    pd.testing.assert_frame_equal(written, filtered)
    assert set(scenes().columns) < set(written.columns) and {"kept", "drop_reason"} < set(written.columns)
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [
        "config.yaml", "detections_filtered.parquet", "submission.csv"]
    saved = config.resolve(PostprocessConfig, "postprocess", tmp_path / "out" / "config.yaml")
    assert saved == PostprocessConfig()


def test_overrides_change_the_result(tmp_path):
    run(scenes(), tmp_path, min_prob=0.2, nested_threshold=1.0)
    sums = pd.read_csv(tmp_path / "submission.csv", dtype={"id": str}).set_index("id")["digit_sum"]
    assert sums["b_inside_dropped"] == 10 and sums["e_floor"] == 7 and sums["a_nested"] == 8
    assert config.resolve(PostprocessConfig, "postprocess", tmp_path / "config.yaml").min_prob == 0.2


def with_cell(row: int, column: str, value) -> pd.DataFrame:
    frame = scenes()
    frame.loc[row, column] = value
    return frame


@pytest.mark.parametrize("frame, message", [
    (scenes().drop(columns="cls_prob"), "missing column.*cls_prob"),
    (with_cell(0, "x2", -5.0), "x2 < x1"),
    (with_cell(0, "y1", np.nan), "not finite"),
    (with_cell(0, "cls_digit", 10), "outside 0..9"),
    (with_cell(0, "det_class", -1), "outside 0..9"),
    (with_cell(0, "cls_prob", 1.5), "cls_prob outside 0..1"),
    (with_cell(0, "image_id", None), "without image_id"),
    (with_cell(4, "image_id", "a_nested"), "empty row and detections"),
])
def test_bad_tables(tmp_path, frame, message):
    with pytest.raises(UmnistError, match=message):
        run(frame, tmp_path)


def test_doubled_empty_row(tmp_path):
    with pytest.raises(UmnistError, match="'x' has several empty rows"):
        run(table(empty("x"), empty("x")), tmp_path)


@pytest.mark.parametrize("values, message", [
    ({"min_prob": 1.5}, "min_prob=1.5"), ({"nested_threshold": 0}, "nested_threshold=0"),
])
def test_config_checks(tmp_path, values, message):
    with pytest.raises(UmnistError, match=message):
        run(scenes(), tmp_path, **values)


def test_cli(tmp_path, capsys):
    source = tmp_path / "detections.parquet"
    scenes().to_parquet(source)
    out = str(tmp_path / "o")
    assert main(["postprocess", "--detections", str(source), "--out", out, "--min-prob", "0.2"]) == 0
    assert "8 images" in capsys.readouterr().out
    assert pd.read_csv(tmp_path / "o" / "submission.csv").set_index("id")["digit_sum"]["e_floor"] == 7
    assert main(["postprocess", "--detections", str(tmp_path / "nope.parquet"), "--out", str(tmp_path)]) == 2
    assert "nope.parquet: no such file or folder (give `umnist infer`'s output folder" in capsys.readouterr().err
    (tmp_path / "infer_out").mkdir()
    assert main(["postprocess", "--detections", str(tmp_path / "infer_out"), "--out", str(tmp_path)]) == 2
    assert "infer_out/detections.parquet: detections file not found" in capsys.readouterr().err
    (tmp_path / "bad.parquet").write_text("not parquet")
    assert main(["postprocess", "--detections", str(tmp_path / "bad.parquet"), "--out", str(tmp_path)]) == 2
    assert "not a readable Parquet file" in capsys.readouterr().err
