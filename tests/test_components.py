"""The components' Python functions called directly (`component.python_func`) on real data, outside KFP."""

import json

import pytest
from kfp.dsl import HTML, ClassificationMetrics, Dataset, Markdown, Metrics, Model

from tests.conftest import tiny_config
from tests.tables import detection, empty, table
from umnist import config, layout
from umnist.pipeline import components


def artifact(cls, path):
    return cls(name=path.name, uri=str(path))


def test_synth_writes_detection_and_crops(tmp_path, mnist_dir):
    detection_set, crops, summary = (artifact(Dataset, tmp_path / "detection"), artifact(Dataset, tmp_path / "crops"),
                                     artifact(Metrics, tmp_path / "summary"))
    components.synth.python_func(detection=detection_set, crops=crops, summary=summary, mnist=str(mnist_dir),
                                 config=tiny_config(synth={"scenes_train": 6, "scenes_val": 2, "empty_train": 1}),
                                 workers=1)
    assert (tmp_path / "detection" / "data.yaml").is_file()
    assert len(list((tmp_path / "detection" / "images" / "train").glob("*.jpg"))) == 6
    assert (tmp_path / "detection" / "val_sums.csv").is_file() and (tmp_path / "crops" / "index.csv").is_file()
    manifest = json.loads((tmp_path / "detection" / "manifest.json").read_text())
    assert manifest["config"]["scenes_train"] == 6 and manifest["config"]["empty_train"] == 1
    assert summary.metadata["train_scenes"] == 6 and summary.metadata["train_empty_scenes"] == 1
    assert summary.metadata["val_crops"] == manifest["splits"]["val"]["crops"] > 0


@pytest.fixture
def predictions(tmp_path):
    """postprocess over two parts' detection tables."""
    parts = [table(detection("s1", (0, 0, 40, 40), 3), detection("s1", (10, 10, 20, 20), 8),
                   detection("s1", (50, 50, 90, 90), 4, det_class=1)),
             table(empty("s2"), detection("s3", (0, 0, 30, 30), 6, prob=0.3), detection("s3", (40, 40, 60, 60), 2))]
    inputs = []
    for i, part in enumerate(parts):
        part.to_parquet(tmp_path / f"part{i}.parquet")
        inputs.append(artifact(Dataset, tmp_path / f"part{i}.parquet"))
    out, summary = artifact(Dataset, tmp_path / "predictions"), artifact(Metrics, tmp_path / "pp-summary")
    components.postprocess.python_func(detections=inputs, predictions=out, summary=summary, config=tiny_config())
    assert summary.metadata == {"images": 3, "digits_kept": 3, "dropped_nested": 1, "dropped_low_prob": 1}
    return out


def test_postprocess_sums_the_collected_parts(predictions, tmp_path):
    assert (tmp_path / "predictions" / "submission.csv").read_text().split() == ["id,digit_sum", "s1,7", "s2,0",
                                                                                  "s3,2"]


def test_score_logs_metrics_confusion_and_report(predictions, tmp_path):
    images = tmp_path / "images"
    images.mkdir()
    import cv2
    import numpy as np

    for image_id in ("s1", "s2", "s3"):
        cv2.imwrite(str(images / f"{image_id}.jpeg"), np.zeros((100, 100), np.uint8))
    (tmp_path / "labels.csv").write_text("id,digit_sum\ns1,7\ns2,5\ns3,8\n")
    (tmp_path / "boxes.csv").write_text("id,digit,x1,y1,x2,y2\ns1,3,0,0,40,40\ns1,4,50,50,90,90\ns2,5,0,0,9,9\n")
    outputs = {"scores": artifact(Dataset, tmp_path / "scores"), "summary": artifact(Metrics, tmp_path / "m"),
               "confusion": artifact(ClassificationMetrics, tmp_path / "c"), "report": artifact(HTML, tmp_path / "r"),
               "run_summary": artifact(Markdown, tmp_path / "summary.md")}
    components.score.python_func(predictions=predictions, labels=str(tmp_path / "labels.csv"),
                                 images=str(images), boxes=str(tmp_path / "boxes.csv"), detector_stop="obj_loss",
                                 classifier_stop="supplied", **outputs)
    summary = outputs["summary"].metadata
    assert summary["sum_accuracy_postprocessed"] == pytest.approx(1 / 3)
    assert summary["box_recall_detector"] == pytest.approx(2 / 3)
    # per size of the true digit: s1's two 40 px digits found, s2's 9 px one missed; no 64-128 px digit
    assert summary["size_32_64_recall_detector"] == summary["size_32_64_recall_postprocessed"] == 1.0
    assert summary["size_0_16_recall_detector"] == 0.0 and summary["size_0_16_precision_detector"] == 0.0
    assert "size_64_128_recall_detector" not in summary and "size_1024_up_recall_detector" not in summary
    matrix = outputs["confusion"].metadata["confusionMatrix"]
    assert len(matrix["annotationSpecs"]) == 28 and matrix["rows"][7]["row"][7] == 1
    assert matrix["rows"][5]["row"][0] == 1 and matrix["rows"][8]["row"][2] == 1
    report = (tmp_path / "r").read_text()
    assert "s2" in report and "s3" in report and "<img" in report
    assert json.loads((tmp_path / "scores" / "metrics.json").read_text())["wrong_ids"] == ["s2", "s3"]
    markdown = (tmp_path / "summary.md").read_text()
    assert "| postprocessed | 33.33 % |" in markdown and "| detector | obj_loss |" in markdown


def test_infer_runs_the_detector_at_its_checkpoint_size(tiny_detector, tiny_classifier, tiny_data, tmp_path,
                                                        monkeypatch):
    """As with the pipeline's `detector_weights`: the checkpoint's training size (here recorded as 96 px), not
    the profile's detector img_size (2560 in `full`), is the size the infer step runs the detector at."""
    import pandas as pd
    import torch

    from umnist.detector import Detector

    weights = layout.weights("detector", tmp_path / "detector")
    weights.parent.mkdir(parents=True)
    ckpt = torch.load(layout.weights("detector", tiny_detector), weights_only=False)
    ckpt["opt"]["imgsz"] = 96
    torch.save(ckpt, weights)
    sizes, detect_batch = [], Detector._detect_batch
    monkeypatch.setattr(Detector, "_detect_batch", lambda self, images: sizes.append(self.img_size)
                        or detect_batch(self, images))
    components.infer.python_func(images=str(tiny_data / "detection" / "images" / "val"),
                                 detector=artifact(Model, tmp_path / "detector"),
                                 classifier=artifact(Model, tiny_classifier[0]),
                                 detections=artifact(Dataset, tmp_path / "detections.parquet"),
                                 config=config.profile_text("full"))
    assert sizes and set(sizes) == {96}
    assert pd.read_parquet(tmp_path / "detections.parquet")["image_id"].nunique() == 6


def test_train_detector_takes_supplied_weights(tmp_path):
    weights = tmp_path / "mine.pt"
    weights.write_bytes(b"checkpoint")
    model = artifact(Model, tmp_path / "model")
    assert components.train_detector.python_func(detection=artifact(Dataset, tmp_path / "unused"), model=model,
                                                 summary=artifact(Metrics, tmp_path / "m"), config=tiny_config(),
                                                 weights=str(weights)) == "supplied"
    assert layout.weights("detector", tmp_path / "model").read_bytes() == b"checkpoint"
    assert model.metadata["supplied"] == str(weights)


def test_train_classifier_takes_supplied_weights_from_the_store(tmp_path, s3_uri):
    from umnist import storage

    (tmp_path / "best.pt").write_bytes(b"classifier")
    uri = storage.upload(tmp_path / "best.pt", s3_uri + "/best.pt")
    components.train_classifier.python_func(crops=artifact(Dataset, tmp_path / "unused"),
                                            model=artifact(Model, tmp_path / "model"),
                                            summary=artifact(Metrics, tmp_path / "m"),
                                            confusion=artifact(ClassificationMetrics, tmp_path / "c"),
                                            config=tiny_config(), weights=uri)
    assert layout.weights("classifier", tmp_path / "model").read_bytes() == b"classifier"
