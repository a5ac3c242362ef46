"""Atomic outputs: write to a temporary name next to the target, then rename.

A killed or failed stage therefore never leaves a half-written file or directory under the final name.
"""

import contextlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import yaml

# The image files every stage that takes a folder of images reads (competition: `{id}.jpeg`).
IMAGE_SUFFIXES = (".jpeg", ".jpg", ".png")


@contextlib.contextmanager
def atomic_path(target: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside `target`; on success rename it to `target`, on error delete it.

    Works for files and directories alike: the caller decides what to create at the yielded path.
    An existing `target` is replaced only once the new one is complete.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".partial", dir=target.parent))
    tmp.rmdir()
    try:
        yield tmp
        if target.is_dir() and not target.is_symlink():
            shutil.rmtree(target)
        os.replace(tmp, target)
    except BaseException:
        if tmp.is_dir():
            shutil.rmtree(tmp, ignore_errors=True)
        elif tmp.exists():
            tmp.unlink()
        raise


def write_text(target: str | os.PathLike, text: str) -> Path:
    """Write `text` to `target` atomically."""
    with atomic_path(target) as tmp:
        tmp.write_text(text)
    return Path(target)


def write_json(target: str | os.PathLike, obj) -> Path:
    """Write `obj` as indented JSON to `target` atomically."""
    return write_text(target, json.dumps(obj, indent=2, sort_keys=True) + "\n")


def write_yaml(target: str | os.PathLike, obj) -> Path:
    """Write `obj` as YAML to `target` atomically (key order kept, so configs read like the profiles)."""
    return write_text(target, yaml.safe_dump(obj, sort_keys=False))
