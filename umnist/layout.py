"""Where a training stage's output folder keeps its weights: the one home of that layout for the code that
reads it (the pipeline's components, `umnist.steps`, the benchmarks). The trainers that write it:
umnist.detector.training (yolov5's `weights/` folder) and umnist.classifier.train.
"""

import os
from pathlib import Path

from umnist.errors import UmnistError

# stage -> (its best weights, the checkpoint a resumed run continues from), relative to its output folder
FILES = {"detector": ("weights/best.pt", "weights/last.pt"), "classifier": ("best.pt", "last.pt")}


def weights(stage: str, out_dir: str | os.PathLike) -> Path:
    """The trained weights (what infer and predict load) in the output folder of `stage`'s training."""
    return Path(out_dir) / _files(stage)[0]


def checkpoint(stage: str, out_dir: str | os.PathLike) -> Path:
    """The last checkpoint (what a resumed training continues from) in the output folder of `stage`."""
    return Path(out_dir) / _files(stage)[1]


def _files(stage: str) -> tuple[str, str]:
    if stage not in FILES:
        raise UmnistError(f"{stage!r}: not a training stage ({', '.join(FILES)})")
    return FILES[stage]
