"""The infer stage: detect digits on full images, cut square crops, re-classify them with invert TTA.

    from umnist import infer
    summary = infer.run("train/", "detector/weights/best.pt", "classifier/best.pt", "out", "full")

Writes `out/detections.parquet` (docs/formats.md), a row per detection and an `empty` row per image without one,
so no id is lost, and `out/infer_stats.json` (speed). Each model runs at the input size its checkpoint records
(the detector's training `imgsz`, the classifier's `img_size`), whatever the profile; `img_size` overrides the
detector's, with a warning.
Streams: images are decoded ahead by threads while the models work, results go to small chunk files (so memory
stays flat and a killed run resumes where it stopped), then into one table. A run may do one part of the images
(`part` of `parts`, image i in part i % parts), as the pipeline's parallel infer steps do.
"""

from umnist.infer.config import InferConfig
from umnist.infer.detections import Models, list_images, model_profile, read_gray, run

__all__ = ["InferConfig", "Models", "list_images", "model_profile", "read_gray", "run"]
