"""The synth stage: detection scenes in YOLO layout plus the classifier's 128x128 crop set.

    from umnist import synth
    synth.run("data", profile="tiny", mnist="../shared/data/mnist", workers=2)

Output layout: docs/formats.md ("synth").
"""

from umnist.synth.config import SynthConfig
from umnist.synth.generate import run

__all__ = ["SynthConfig", "run"]
