"""The `postprocess` section: the nested-box threshold and the probability floor."""

import dataclasses

from umnist.config import opt


@dataclasses.dataclass
class PostprocessConfig:
    nested_threshold: float = opt(0.999, "intersection over the smaller box's area above which the smaller "
                                  "box is dropped: big digits have artefacts detected as small digits inside "
                                  "them, which IoU-based NMS cannot remove (write-up, 'Post processing')")
    min_prob: float = opt(0.45, "drop a digit whose averaged TTA probability is below this: background taken "
                          "for a digit gets a low classifier probability (write-up, 'Post processing'; the "
                          "original tested 0.9 on the sum of the two TTA probabilities, the same rule)")

    def check(self) -> list[str]:
        problems = []
        if not 0 < self.nested_threshold <= 1:
            problems.append(f"nested_threshold={self.nested_threshold} must be in (0, 1]")
        if not 0 <= self.min_prob <= 1:
            problems.append(f"min_prob={self.min_prob} must be in [0, 1]")
        return problems
