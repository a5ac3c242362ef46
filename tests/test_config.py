import argparse
import dataclasses
from typing import Literal

import pytest
import yaml

from umnist import config
from umnist.config import build, load_profile, opt, resolve, resolve_all
from umnist.errors import UmnistError


@dataclasses.dataclass
class ToyConfig:
    count: int = opt(3, "how many")
    ratio: float = opt(0.5, "a share")
    mode: Literal["a", "b"] = opt("a", "which")
    sizes: tuple[int, ...] = opt((1, 2), "bounds")
    name: str | None = opt(None, "optional")

    def check(self):
        return [f"count={self.count} must be >= 0"] if self.count < 0 else []


@pytest.mark.parametrize("values, message", [
    ({"cuont": 1}, "unknown key.*cuont"),
    ({"count": "3"}, "count='3' is not int"),
    ({"count": 1.5}, "count=1.5 is not int"),
    ({"count": True}, "count=True is not int"),
    ({"mode": "c"}, "mode='c' is not one of 'a', 'b'"),
    ({"sizes": [1, "x"]}, "sizes="),
    ({"count": -1}, "count=-1 must be >= 0"),
])
def test_build_rejects(values, message):
    with pytest.raises(UmnistError, match=message):
        build(ToyConfig, values, "here")


def test_build_accepts_and_converts():
    cfg = build(ToyConfig, {"ratio": 1, "sizes": [4, 5], "name": "x"}, "here")
    assert cfg.ratio == 1 and cfg.sizes == (4, 5) and cfg.name == "x" and cfg.count == 3


@pytest.mark.parametrize("flags, expected", [
    (["--sizes", "7"], {"sizes": [7]}),            # one bare item is a list of one
    (["--sizes", "[7, 8]"], {"sizes": [7, 8]}),
    (["--count", "4", "--name", "x"], {"count": 4, "name": "x"}),
    ([], {}),
])
def test_command_line_overrides(flags, expected):
    parser = argparse.ArgumentParser()
    config.add_arguments(parser, ToyConfig)
    overrides = config.overrides_from_args(parser.parse_args(flags))
    assert overrides == expected
    assert build(ToyConfig, overrides, "flags")


def test_profiles_resolve():
    for name in config.profile_names():
        resolved = resolve_all(name)
        assert set(resolved) == set(config.SECTIONS)


def test_unknown_profile_and_section(tmp_path):
    with pytest.raises(UmnistError, match="unknown profile 'nope'"):
        load_profile("nope")
    bad = tmp_path / "bad.yaml"
    bad.write_text("sinth: {}\n")
    with pytest.raises(UmnistError, match="unknown section.*sinth"):
        resolve_all(bad)
    bad.write_text("- a list\n")
    with pytest.raises(UmnistError, match="must be a mapping"):
        load_profile(bad)
    bad.write_text("a: [\n")
    with pytest.raises(UmnistError, match="not valid YAML"):
        load_profile(bad)


def test_a_renamed_key_fails_with_its_new_name(tmp_path):
    """infer's shard/shards/part_images became part/parts/chunk_images (one meaning per name): a config.yaml
    written before says so instead of listing every known key."""
    old = tmp_path / "old.yaml"
    old.write_text("infer: {shards: 4, shard: 1, batch_images: 2}\n")
    with pytest.raises(UmnistError, match=r"old\.yaml, section infer: shard is now called part, shards is now "
                                          r"called parts$"):
        resolve(config.section_class("infer"), "infer", old)


def test_saved_config_is_a_profile(tmp_path, monkeypatch):
    monkeypatch.setitem(config.SECTIONS, "toy", f"{__name__}:ToyConfig")
    profile = tmp_path / "p.yaml"
    profile.write_text(yaml.safe_dump({"toy": {"count": 7}}))
    cfg = resolve(ToyConfig, "toy", profile, ratio=0.25)
    config.save(cfg, "toy", tmp_path / "out", profile)
    again = resolve(ToyConfig, "toy", tmp_path / "out" / "config.yaml")
    assert again == cfg == ToyConfig(count=7, ratio=0.25)


def test_a_profile_travels_as_text():
    """The pipeline's `config` parameter: every section resolved, read back as a profile given as data."""
    text = config.profile_text("tiny")
    profile = config.parse_profile(text)
    assert profile["_profile"] == "tiny" and resolve_all(profile) == resolve_all("tiny")
    one_line = config.profile_text("tiny", one_line=True)
    assert "\n" not in one_line and config.parse_profile(one_line) == profile
    with pytest.raises(UmnistError, match="profile tiny, section synth: unknown key"):
        resolve_all({**profile, "synth": {"nope": 1}})
    with pytest.raises(UmnistError, match="not valid YAML"):
        config.parse_profile("synth: [")
    with pytest.raises(UmnistError, match="expected a mapping"):
        config.parse_profile("tiny")


@pytest.mark.parametrize("profile", config.profile_names())
def test_every_shipped_profile_resolves(profile):
    """Each profile in configs/ is valid in every section (types, ranges, cross-field checks)."""
    resolved = resolve_all(profile)
    assert set(resolved) == set(config.SECTIONS)
