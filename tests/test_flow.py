"""umnist.flow: the run's one description gives command lines the real `umnist` parser takes."""

import pytest

from umnist import flow
from umnist.cli import build_parser
from umnist.errors import UmnistError

RUN_INPUTS = {"mnist": "mnist", "images": "imgs", "labels": "train.csv", "boxes": "boxes.csv"}


def folders(root):
    return {step.name: root / step.name for step in flow.STEPS}


@pytest.mark.parametrize("step", flow.STEPS, ids=lambda step: step.name)
def test_command_lines_parse_and_wire_the_steps(step, tmp_path):
    args = build_parser().parse_args(flow.command(step.name, folders(tmp_path), RUN_INPUTS))
    assert args.out == str(tmp_path / step.name)
    for name, source in step.inputs.items():
        expected = RUN_INPUTS[source.path] if source.step is None else str(tmp_path / source.step / source.path)
        assert getattr(args, name).rstrip("/") == expected.rstrip("/"), name


def test_the_weights_infer_reads_are_where_the_trainers_write_them(tmp_path):
    argv = flow.command("infer", folders(tmp_path), RUN_INPUTS)
    assert argv[argv.index("--detector") + 1] == str(tmp_path / "train-detector" / "weights" / "best.pt")
    assert argv[argv.index("--classifier") + 1] == str(tmp_path / "train-classifier" / "best.pt")


def test_optional_inputs_may_be_missing_required_ones_not(tmp_path):
    argv = flow.command("score", folders(tmp_path), {"labels": "train.csv"})
    assert "--boxes" not in argv and "--images" not in argv
    with pytest.raises(UmnistError, match="step score: needs the run input labels"):
        flow.command("score", folders(tmp_path), {})
    with pytest.raises(UmnistError, match=r"step score: unknown run input\(s\) label \(known: mnist, images"):
        flow.command("score", folders(tmp_path), {"label": "train.csv"})
    with pytest.raises(UmnistError, match="step infer: needs the output folder of step train-detector"):
        flow.command("infer", {"infer": tmp_path}, RUN_INPUTS)


def test_steps_only_read_earlier_steps():
    seen = set()
    for step in flow.STEPS:
        assert step.producers() <= seen, step.name
        seen.add(step.name)
