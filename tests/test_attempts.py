"""umnist.attempts: a retried training step finds its earlier attempt's checkpoints in the store."""

from pathlib import Path

from umnist import attempts, storage


def test_a_retry_restores_the_last_mirrored_checkpoint(s3_uri, tmp_path):
    output = s3_uri + "/train-detector/model"
    first = tmp_path / "attempt1"
    (first / "weights").mkdir(parents=True)
    (first / "yolo").mkdir()
    (first / "yolo" / "train.cache").write_bytes(b"rebuilt on start")
    mirror = attempts.Mirror(output, first, every_s=3600)
    assert mirror.sync() is False  # nothing written yet
    (first / "weights" / "last.pt").write_bytes(b"epoch 3")
    (first / "metrics.csv").write_text("epoch\n1\n2\n3\n")
    assert mirror.sync() is True and mirror.sync() is False  # unchanged: not uploaded again
    second = tmp_path / "attempt2"  # the retried pod: same output URI, empty disk
    assert attempts.restore(output, second, needs="weights/last.pt")
    assert (second / "weights" / "last.pt").read_bytes() == b"epoch 3"
    assert not (second / "yolo").exists()


def test_a_successful_training_empties_the_mirror(s3_uri, tmp_path):
    output = s3_uri + "/cls/model"
    (tmp_path / "run").mkdir()
    with attempts.Mirror(output, tmp_path / "run", every_s=3600) as mirror:
        (tmp_path / "run" / "last.pt").write_bytes(b"w")
        mirror.sync()
    assert storage.list_files(attempts.mirror_uri(output)) == []
    assert not attempts.restore(output, tmp_path / "again", needs="last.pt")


def test_a_failed_training_keeps_the_mirror(s3_uri, tmp_path):
    output = s3_uri + "/cls/model"
    (tmp_path / "run").mkdir()
    try:
        with attempts.Mirror(output, tmp_path / "run", every_s=3600) as mirror:
            (tmp_path / "run" / "last.pt").write_bytes(b"w")
            mirror.sync()
            raise MemoryError("OOM-killed in real life")
    except MemoryError:
        pass
    assert attempts.restore(output, tmp_path / "again", needs="last.pt")


def test_local_outputs_are_not_mirrored(tmp_path):
    """The local runner's artifact URIs are paths: nothing to mirror, nothing to resume."""
    with attempts.Mirror(str(tmp_path / "model"), tmp_path / "model") as mirror:
        assert not mirror.enabled
    assert not attempts.restore(str(tmp_path / "model"), Path(tmp_path / "model"), needs="last.pt")
