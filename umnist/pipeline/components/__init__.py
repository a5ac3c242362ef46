"""The pipeline's six KFP v2 lightweight components: thin wrappers over `umnist` stage functions.

Each component's function source is embedded in the compiled YAML and runs in `base_image` (our CPU or CUDA
image, which has `umnist` and `kfp` installed, so no package is installed at run time). Locally, KFP's
SubprocessRunner(use_venv=False) runs the same source in the current environment. See README "Pipeline".
"""

from umnist.pipeline.components.infer import infer
from umnist.pipeline.components.postprocess import postprocess
from umnist.pipeline.components.score import score
from umnist.pipeline.components.synth import synth
from umnist.pipeline.components.train_classifier import train_classifier
from umnist.pipeline.components.train_detector import train_detector

__all__ = ["infer", "postprocess", "score", "synth", "train_classifier", "train_detector"]
