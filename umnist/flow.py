"""The run, described once: its steps in order and where each step's inputs come from.

    synth ─┬─ train-detector ──┐
           └─ train-classifier ┴─ infer ─ postprocess ─ score

A step's name is its `umnist` command and its KFP task; its inputs are named as its `run()` parameters and its
command's flags (tests/test_stages.py); each comes from a run input (`mnist`, `images`, `labels`, `boxes`) or from
a path inside an earlier step's output folder. The pipeline graph is checked against this description
(tests/test_pipeline.py), `bench/gpu_check.py` builds its command lines from it, and `umnist predict` runs its
last three steps in one folder.
"""

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from umnist import layout
from umnist.errors import UmnistError
from umnist.tables import DETECTIONS_FILE

RUN_INPUTS = ("mnist", "images", "labels", "boxes")


@dataclass(frozen=True)
class Source:
    """A run input (`step` None, `path` its name) or `path` inside step `step`'s output folder ("" = the folder)."""

    step: str | None
    path: str


@dataclass(frozen=True)
class Step:
    name: str
    inputs: dict[str, Source]
    optional: tuple[str, ...] = field(default=())  # inputs a run may go without

    def producers(self) -> set[str]:
        """The earlier steps this one reads from."""
        return {source.step for source in self.inputs.values() if source.step is not None}


STEPS = (
    Step("synth", {"mnist": Source(None, "mnist")}),
    Step("train-detector", {"data": Source("synth", "")}),
    Step("train-classifier", {"crops": Source("synth", "crops")}),
    Step("infer", {"images": Source(None, "images"),
                   "detector": Source("train-detector", layout.FILES["detector"][0]),
                   "classifier": Source("train-classifier", layout.FILES["classifier"][0])}),
    Step("postprocess", {"detections": Source("infer", DETECTIONS_FILE)}),
    Step("score", {"predictions": Source("postprocess", ""), "labels": Source(None, "labels"),
                   "boxes": Source(None, "boxes"), "images": Source(None, "images")}, optional=("boxes", "images")),
)
STEP = {step.name: step for step in STEPS}


def command(name: str, folders: Mapping[str, str | os.PathLike],
            run_inputs: Mapping[str, str | os.PathLike]) -> list[str]:
    """The `umnist` command line of step `name`: `folders` maps a step to its output folder (this step's and
    those it reads from), `run_inputs` a name of RUN_INPUTS to its path; an optional input the run lacks is
    left out. UmnistError names what is missing."""
    unknown = sorted(set(run_inputs) - set(RUN_INPUTS))
    if unknown:
        raise UmnistError(f"step {name}: unknown run input(s) {', '.join(unknown)} (known: {', '.join(RUN_INPUTS)})")
    step = STEP[name]
    argv = [name]
    for flag, source in step.inputs.items():
        if source.step is None:
            if source.path not in run_inputs:
                if flag in step.optional:
                    continue
                raise UmnistError(f"step {name}: needs the run input {source.path}")
            value = Path(run_inputs[source.path])
        else:
            if source.step not in folders:
                raise UmnistError(f"step {name}: needs the output folder of step {source.step}")
            value = Path(folders[source.step]) / source.path
        argv += [f"--{flag}", str(value)]
    if name not in folders:
        raise UmnistError(f"step {name}: no output folder given")
    return [*argv, "--out", str(folders[name])]
