"""The synth stage: detection scenes in YOLO layout plus the classifier's 128x128 crop set.

    from umnist import synth
    synth.run("../shared/data/mnist", "data", "tiny", workers=2)   # returns manifest.json's summary

Output layout: docs/formats.md ("synth").
"""

from umnist.synth.config import SynthConfig
from umnist.synth.generate import run

__all__ = ["SynthConfig", "run"]
