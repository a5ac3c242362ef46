"""Post-processing: from the infer table to one digit sum per image (the write-up's last rung, > 99.1 %).

Two filters run in this order on each image's detections, then the kept digits are summed:
1. nested boxes: a box lying completely inside another (intersection over the smaller box's area above
   `nested_threshold`) is dropped, the smaller one going. Big digits carry artefacts that the detector reports
   as small digits inside them; NMS cannot remove those because their IoU with the big box is tiny.
2. probability floor: a digit whose averaged TTA probability is below `min_prob` is dropped (background the
   detector took for a digit; the classifier is unsure about it).
The sum is clamped to 0..27, the competition's classes. Every image id of the input gets a row, including
images with no detection (sum 0).
"""

from umnist.postprocess.config import PostprocessConfig
from umnist.postprocess.filters import apply_probability_floor, digit_sums, filter_detections, nested_box_filter, run
from umnist.tables import LOW_PROB, NESTED

__all__ = ["LOW_PROB", "NESTED", "PostprocessConfig", "apply_probability_floor", "digit_sums", "filter_detections",
           "nested_box_filter", "run"]
