"""Usage: umnist <command> [options]   (`umnist <command> --help` for each)

One entry point for every stage. Each command lives in its stage's module as `register(subparsers)`, which
adds a parser whose `func(args)` does the work; modules import their heavy dependencies (torch, yolov5, timm)
inside the functions, so `umnist --help` stays fast.
"""

import argparse
import importlib
import sys

from umnist import __version__
from umnist.errors import UmnistError

# Modules that register commands, in the order `umnist --help` lists them.
COMMAND_MODULES = [
    "umnist.mnist_cli",
    "umnist.config_cli",
    "umnist.synth.cli",
    "umnist.detector.cli",
    "umnist.classifier.cli",
    "umnist.infer.cli",
    "umnist.postprocess.cli",
    "umnist.score.cli",
    "umnist.predict",
    "umnist.local_run",
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="umnist", description=__doc__.splitlines()[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"umnist {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="<command>")
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except UmnistError as exc:
        print(f"umnist {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"umnist {args.command}: interrupted", file=sys.stderr)
        return 130
