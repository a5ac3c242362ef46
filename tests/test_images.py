"""images/: each Dockerfile installs the package as the Makefile does, and every file it COPYs exists."""

import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
DOCKERFILES = sorted((REPO / "images").glob("Dockerfile.*"))


def instructions(path: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with comments dropped and continuation lines joined."""
    text = re.sub(r"\\\n", " ", "\n".join(
        line for line in path.read_text().splitlines() if not line.lstrip().startswith("#")))
    return [(line.split(None, 1)[0].upper(), line.split(None, 1)[1] if " " in line.strip() else "")
            for line in text.splitlines() if line.strip()]


def makefile_pins() -> tuple[str, str]:
    makefile = (REPO / "Makefile").read_text()
    torch = re.search(r"pip install -q (torch==\S+ torchvision==\S+)", makefile).group(1)
    opencv = re.search(r"^OPENCV_HEADLESS := (\S+)", makefile, re.M).group(1)
    return torch, opencv


def test_both_images_exist():
    assert [p.name for p in DOCKERFILES] == ["Dockerfile.cpu", "Dockerfile.cuda"]


@pytest.mark.parametrize("path", DOCKERFILES, ids=lambda p: p.name)
def test_installs_like_the_makefile(path):
    runs = [args for op, args in instructions(path) if op == "RUN"]
    torch, opencv = makefile_pins()
    torch_step = next(i for i, run in enumerate(runs) if f"pip install {torch}" in run)
    package_step = next(i for i, run in enumerate(runs) if re.search(r"pip install \.(\s|$)", run))
    opencv_step = next(i for i, run in enumerate(runs) if f"--force-reinstall --no-deps {opencv}" in run)
    assert torch_step < package_step <= opencv_step
    run = runs[opencv_step]
    assert run.index("pip install .") < run.index(opencv)  # headless OpenCV last


@pytest.mark.parametrize("path", DOCKERFILES, ids=lambda p: p.name)
def test_copied_files_exist_and_pass_the_dockerignore(path):
    ignore = (REPO / ".dockerignore").read_text()
    copies = [args.split() for op, args in instructions(path) if op == "COPY"]
    sources = [src for args in copies for src in args[:-1] if not src.startswith("--")]
    assert {"pyproject.toml", "README.md", "umnist", "configs"} <= set(sources)
    for source in sources:
        assert (REPO / source).exists(), f"{path.name} copies {source}, which is missing"
        assert f"!{source}" in ignore.split() or f"!{source}/" in ignore.split(), f"{source} is ignored"


@pytest.mark.parametrize("path", DOCKERFILES, ids=lambda p: p.name)
def test_configs_user_and_no_credentials(path):
    steps = instructions(path)
    env = " ".join(args for op, args in steps if op == "ENV")
    assert "UMNIST_CONFIG_DIR=/opt/umnist/configs" in env
    assert ("COPY", "configs ./configs") in steps  # WORKDIR /opt/umnist
    users = [args for op, args in steps if op == "USER"]
    assert users and users[-1] not in ("root", "0")
    text = path.read_text()
    for secret_word in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "accesskey", "secretkey", "PASSWORD"):
        assert secret_word.lower() not in text.lower()
