"""The detector stage: train YOLOv5 on synthetic scenes, detect digits in full-size images.

    from umnist import detector
    detector.run("data", "runs/detector", "tiny")   # returns summary.json's summary
    found = detector.Detector.from_profile("runs/detector/weights/best.pt", "full").detect(images)

Output layout: docs/formats.md ("train-detector").
"""

from umnist.detector.checkpoint import read_yolo_checkpoint, trained_img_size
from umnist.detector.config import DetectorConfig
from umnist.detector.detection import Detections, Detector
from umnist.detector.training import run

__all__ = ["DetectorConfig", "Detections", "Detector", "read_yolo_checkpoint", "run", "trained_img_size"]
