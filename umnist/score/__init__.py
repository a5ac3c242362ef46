"""Scoring: predicted digit sums against the competition's `train.csv`, which no model saw.

Reports the write-up's ladder of sum accuracies on the same detections: the detector's own classes
(> 95 % in the write-up), after re-classification (> 98 %), after post-processing (> 99.1 %); the accuracy
per true sum; the 28x28 confusion matrix; and, when ground-truth boxes are given, detection recall and
precision at IoU 0.5 with the digit accuracy of the matched boxes, and recall and precision per size of the
true digit (`size_metrics`). Writes `metrics.json` for machines and `report.html` (the wrong images with their
boxes and the digits the detector missed: the write-up's main debugging tool) for people.

Boxes per size are matched by cover, not IoU: a true box may be the tight ink box or the digit's whole square
cell, and a predicted box either too. A thin "1" has an ink box a few pixels wide inside its square cell, an IoU
near 0.1 for a digit the detector did find. A prediction and a true box match when (1) their intersection covers
at least half of the smaller box (which puts the smaller box's centre inside the larger one) and (2) their longer
sides are within a factor of 2 (an ink box's longer side is about 20/28 of its cell's). (2) keeps an artefact
box inside a big digit from counting as that digit.
"""

from umnist.score.metrics import (
    cover_boxes,
    cover_found,
    ladder_text,
    match_boxes,
    run,
    size_bucket,
    size_buckets,
)

__all__ = ["cover_boxes", "cover_found", "ladder_text", "match_boxes", "run", "size_bucket", "size_buckets"]
