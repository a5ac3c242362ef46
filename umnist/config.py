"""Profiles and configs: YAML profile -> dataclass defaults -> validated, resolved config.

Each stage declares its settings as a dataclass whose defaults are the `full` profile (the numbers in
docs/recipe.md), each field with a help text that says why. A profile (`configs/<name>.yaml`, or any YAML path)
overrides those defaults per stage section; keyword arguments or CLI flags override the profile. The result is
checked (unknown keys, wrong types, impossible values) before any work starts and saved next to every output,
so a run can be reproduced from its own output folder:

    umnist synth --profile tiny --out data --scenes-train 20
    umnist synth --config data/config.yaml --out data2      # the same run again

A profile may also be given as data (a mapping): the pipeline carries a run's whole configuration as one
parameter, the YAML text of `profile_text` (what `umnist config` prints), which each component reads back
with `parse_profile`; so a profile edited where the pipeline is compiled or submitted needs no image rebuild.
"""

import argparse
import dataclasses
import importlib
import json
import os
import types
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import yaml

from umnist.errors import UmnistError
from umnist.fileio import write_yaml

# Where named profiles live: $UMNIST_CONFIG_DIR (the container images set it), else the repo's configs/.
CONFIG_DIR_ENV = "UMNIST_CONFIG_DIR"
REPO_CONFIG_DIR = Path(__file__).resolve().parent.parent / "configs"
DEFAULT_PROFILE = "tiny"  # what a command runs with when told nothing: seconds on a laptop, never a surprise bill

# The sections a profile may hold: stage section -> "module:ConfigClass". Keys starting with "_" are notes.
SECTIONS: dict[str, str] = {
    "synth": "umnist.synth.config:SynthConfig",
    "detector": "umnist.detector.config:DetectorConfig",
    "classifier": "umnist.classifier.config:ClassifierConfig",
    "infer": "umnist.infer.config:InferConfig",
    "postprocess": "umnist.postprocess.config:PostprocessConfig",
}


def opt(default, help: str):
    """A config field: its default and the reason for it (shown by `--help` and in the docs)."""
    if isinstance(default, list | dict):
        return dataclasses.field(default_factory=lambda: type(default)(default), metadata={"help": help})
    return dataclasses.field(default=default, metadata={"help": help})


def config_dir() -> Path:
    return Path(os.environ.get(CONFIG_DIR_ENV) or REPO_CONFIG_DIR)


def profile_names() -> list[str]:
    return sorted(p.stem for p in config_dir().glob("*.yaml"))


def load_profile(profile: str | os.PathLike | Mapping) -> dict:
    """Read a profile by name (`tiny`, `full`, ...) or by path to a YAML file, or take a mapping as the
    profile itself; return its mapping."""
    if isinstance(profile, Mapping):
        return dict(profile)
    path = Path(profile)
    if path.suffix not in (".yaml", ".yml"):
        path = config_dir() / f"{profile}.yaml"
        if not path.is_file():
            raise UmnistError(f"unknown profile '{profile}': no {path} (known: {', '.join(profile_names())})")
    elif not path.is_file():
        raise UmnistError(f"{path}: config file not found")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise UmnistError(f"{path}: not valid YAML ({str(exc).splitlines()[0]})") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise UmnistError(f"{path}: a profile must be a mapping of stage sections, got {type(data).__name__}")
    return data


def profile_name(profile: str | os.PathLike | Mapping) -> str:
    """A profile as messages and saved configs name it: its name or path, or a mapping's `_profile` note."""
    if isinstance(profile, Mapping):
        return str(profile.get("_profile", "(a mapping)"))
    return str(profile)


def profile_text(profile: str | os.PathLike | Mapping = "tiny", one_line: bool = False) -> str:
    """Every section of a profile, resolved and checked, as YAML text noting its source under `_profile`.
    `one_line`: as one line of JSON (which is YAML too), the form a KFP pipeline parameter's default needs: the
    compiler copies defaults line by line into a comment at the top of the YAML, which a line break would end."""
    data = {"_profile": profile_name(profile), **resolve_all(profile)}
    return json.dumps(data) if one_line else yaml.safe_dump(data, sort_keys=False)


def parse_profile(text: str) -> dict:
    """A profile from YAML text (`profile_text`'s, or a profile file's contents)."""
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise UmnistError(f"profile text: not valid YAML ({str(exc).splitlines()[0]})") from None
    if not isinstance(data, dict):
        raise UmnistError(f"profile text: expected a mapping of stage sections, got {type(data).__name__}")
    return data


def _type_ok(value: Any, tp: Any) -> bool:
    """Is `value` acceptable for the annotation `tp`? Ints are accepted where floats are expected."""
    origin = typing.get_origin(tp)
    if tp is Any:
        return True
    if origin is Literal:
        return value in typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        return any(_type_ok(value, arg) for arg in typing.get_args(tp))
    if tp is type(None):
        return value is None
    if origin in (list, tuple):
        args = typing.get_args(tp)
        inner = args[0] if args else Any
        return isinstance(value, list | tuple) and all(_type_ok(v, inner) for v in value)
    if origin is dict:
        return isinstance(value, dict)
    if tp is float:
        return isinstance(value, int | float) and not isinstance(value, bool)
    if tp is int:
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, tp)


def _type_name(tp: Any) -> str:
    if typing.get_origin(tp) is Literal:
        return "one of " + ", ".join(repr(a) for a in typing.get_args(tp))
    return getattr(tp, "__name__", None) or str(tp).replace("typing.", "")


def build(cls, values: dict | None, where: str):
    """Make a `cls` config from `values` (defaults for what is missing), rejecting anything not right.

    `where` names the source in error messages, e.g. "profile tiny, section synth".
    The dataclass may define `check(self)` returning a list of problems with the combined values, and
    `RENAMED` (old key -> new key), so that a config written before a rename fails with the new name.
    """
    values = dict(values or {})
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    renamed = {old: new for old, new in getattr(cls, "RENAMED", {}).items() if old in values}
    if renamed:
        raise UmnistError(f"{where}: " + ", ".join(f"{old} is now called {new}" for old, new in renamed.items()))
    unknown = sorted(set(values) - set(names))
    if unknown:
        raise UmnistError(f"{where}: unknown key(s) {', '.join(unknown)} (known: {', '.join(names)})")
    for name, value in values.items():
        if isinstance(value, list) and typing.get_origin(hints[name]) is tuple:
            values[name] = value = tuple(value)
        if not _type_ok(value, hints[name]):
            raise UmnistError(f"{where}: {name}={value!r} is not {_type_name(hints[name])}")
    cfg = cls(**values)
    problems = cfg.check() if hasattr(cfg, "check") else []
    if problems:
        raise UmnistError(f"{where}: " + "; ".join(problems))
    return cfg


def section_class(section: str):
    """The config dataclass of a profile section ("synth", "detector", ...)."""
    module, name = SECTIONS[section].split(":")
    return getattr(importlib.import_module(module), name)


def _check_sections(data: dict, profile) -> None:
    unknown = sorted(k for k in data if k not in SECTIONS and not str(k).startswith("_"))
    if unknown:
        raise UmnistError(f"profile {profile_name(profile)}: unknown section(s) {', '.join(map(str, unknown))} "
                          f"(known: {', '.join(SECTIONS)})")


def resolve_all(profile: str | os.PathLike | Mapping = "tiny") -> dict:
    """Every section of a profile, resolved and checked, as plain data."""
    data = load_profile(profile)
    _check_sections(data, profile)
    return {section: to_dict(resolve(section_class(section), section, profile)) for section in SECTIONS}


def resolve(cls, section: str, profile: str | os.PathLike | Mapping = "tiny", **overrides):
    """The config of one stage: dataclass defaults <- profile section <- keyword overrides."""
    data = load_profile(profile)
    _check_sections(data, profile)
    values = data.get(section) or {}
    if not isinstance(values, dict):
        raise UmnistError(f"profile {profile_name(profile)}: section '{section}' must be a mapping")
    values = {**values, **{k: v for k, v in overrides.items() if v is not None}}
    return build(cls, values, f"profile {profile_name(profile)}, section {section}")


def save(cfg, section: str, out_dir: str | os.PathLike, profile: str | os.PathLike | Mapping, **extra) -> Path:
    """Write the resolved config into `config.yaml` in `out_dir`; it is itself a valid profile.

    Stages that share an output directory (infer, then postprocess, in `umnist predict`) each add their
    section to the same file; notes about the run (`extra`) are kept under `_<section>`.
    """
    path = Path(out_dir) / "config.yaml"
    doc = load_profile(path) if path.is_file() else {}
    doc.update({"_profile": profile_name(profile), section: to_dict(cfg)})
    if extra:
        doc[f"_{section}"] = {k: str(v) if isinstance(v, os.PathLike) else v for k, v in extra.items()}
    return write_yaml(path, doc)


def to_dict(cfg) -> dict:
    return {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(cfg).items()}


def add_arguments(parser: argparse.ArgumentParser, cls, recorded: str | None = None) -> None:
    """Add `--profile` and one `--field-name VALUE` flag per config field (values parsed as YAML). `recorded`:
    where the settings come from when no profile is given (the flag then defaults to None), e.g. "the
    detector's weights"; otherwise the default is `DEFAULT_PROFILE`."""
    where = f"the settings recorded in {recorded}, else {DEFAULT_PROFILE}" if recorded else DEFAULT_PROFILE
    parser.add_argument("--profile", default=None if recorded else DEFAULT_PROFILE,
                        help=f"profile name in configs/ or a YAML path, e.g. a saved config.yaml (default: {where})")
    group = parser.add_argument_group(f"{cls.__name__} (override the profile)")
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        text = f.metadata.get("help", "").replace("%", "%%")  # argparse reads % as a format directive
        if f.default is not dataclasses.MISSING:
            text += f" [full: {f.default!r}]"
        is_list = typing.get_origin(hints[f.name]) is tuple
        group.add_argument(f"--{f.name.replace('_', '-')}", dest=f"cfg_{f.name}",
                           type=_yaml_list if is_list else yaml.safe_load, default=None, metavar="V", help=text)


def _yaml_list(text: str):
    """A list flag's value: YAML (`[train, test]`), one bare item (`test`) being a list of one."""
    value = yaml.safe_load(text)
    return value if isinstance(value, list) else [value]


def overrides_from_args(args: argparse.Namespace) -> dict:
    """The config fields given on the command line (flags added by `add_arguments`)."""
    return {k[4:]: v for k, v in vars(args).items() if k.startswith("cfg_") and v is not None}
