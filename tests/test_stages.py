"""Every stage has one shape (README "Architecture"): `run(inputs..., out, profile="tiny", *, options,
**overrides) -> dict`, its summary (the stages that run trained models default to None: the settings recorded
with the models); and a CLI command whose flags are the same names: one per input, `--out`, `--profile` and one
per field of its config section."""

import dataclasses
import inspect
import typing

import pytest

from umnist import classifier, config, detector, flow, infer, postprocess, predict, score, synth
from umnist.cli import build_parser


def required(step: str) -> list[str]:
    """A step's inputs in umnist.flow that a run must give, in order."""
    return [name for name in flow.STEP[step].inputs if name not in flow.STEP[step].optional]


# stage -> (command, its run, its inputs in order, its config section or None)
STAGES = {
    "synth": ("synth", synth.run, required("synth"), "synth"),
    "train-detector": ("train-detector", detector.run, required("train-detector"), "detector"),
    "train-classifier": ("train-classifier", classifier.run, required("train-classifier"), "classifier"),
    "infer": ("infer", infer.run, required("infer"), "infer"),
    "postprocess": ("postprocess", postprocess.run, required("postprocess"), "postprocess"),
    "score": ("score", score.run, required("score"), None),
    "predict": ("predict", predict.run, required("infer"), "infer"),
}


# The stages that run trained models: without a profile they take the settings recorded with them.
RECORDED_PROFILE = {"infer", "postprocess", "predict"}


def command_line(stage: str) -> list[str]:
    """The stage's command with a placeholder for every required input and --out."""
    command, _, inputs, _ = STAGES[stage]
    return [command, *[arg for name in [*inputs, "out"] for arg in (f"--{name.replace('_', '-')}", "x")]]


def test_every_flow_step_is_a_stage():
    assert {step.name for step in flow.STEPS} <= set(STAGES)


def command_flags(command: str) -> set[str]:
    parser = build_parser()._subparsers._group_actions[0].choices[command]
    return {option for action in parser._actions for option in action.option_strings}


@pytest.mark.parametrize("stage", STAGES)
def test_run_takes_inputs_then_out_then_profile_and_keywords(stage):
    _, run, inputs, section = STAGES[stage]
    params = list(inspect.signature(run).parameters.values())
    positional = [p.name for p in params if p.kind == p.POSITIONAL_OR_KEYWORD]
    assert positional == inputs + ["out"] + (["profile"] if section else [])
    if section:
        recorded = stage in RECORDED_PROFILE
        assert params[len(positional) - 1].default == (None if recorded else config.DEFAULT_PROFILE)
        assert build_parser().parse_args(command_line(stage)).profile == params[len(positional) - 1].default
    rest = params[len(positional):]
    assert all(p.kind in (p.KEYWORD_ONLY, p.VAR_KEYWORD) for p in rest), [p.name for p in rest]
    assert any(p.kind == p.VAR_KEYWORD for p in rest) == (section is not None)
    assert typing.get_type_hints(run)["return"] is dict


@pytest.mark.parametrize("stage", STAGES)
def test_command_flags_are_the_run_parameters(stage):
    command, run, inputs, section = STAGES[stage]
    flags = command_flags(command)
    keywords = [name for name, p in inspect.signature(run).parameters.items() if p.kind == p.KEYWORD_ONLY]
    expected = {f"--{name.replace('_', '-')}" for name in [*inputs, "out", *keywords]}
    if section:
        fields = dataclasses.fields(config.section_class(section))
        expected |= {"--profile"} | {f"--{f.name.replace('_', '-')}" for f in fields}
    # `progress` is the one keyword whose flag is its negation, as in every CLI here.
    expected = {"--no-progress" if flag == "--progress" else flag for flag in expected}
    assert expected <= flags, sorted(expected - flags)
