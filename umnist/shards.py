"""Many files packed into tar shards plus `index.json`, in a local directory or under an object-store prefix.

Tens of GB of scenes are not one object: consumers stream one shard at a time, and parallel steps (one pod per
shard) each fetch only their own. Layout of a shard set:

    shard-00000.tar, shard-00001.tar, ...   plain tar (JPEGs do not compress), regular files only
    index.json                              {"format": "umnist-shards/1", "files": N, "bytes": B,
                                             "shards": [{"name", "files", "bytes", "members": [...]}, ...]}

A local set is written under a temporary name and renamed when complete; a remote one uploads each shard as
soon as it is full (so local disk holds one shard at a time) and then `index.json` and the `_SUCCESS` marker
last (see umnist.storage). Reading checks every member before extracting it: absolute names, `..`, links and
devices are refused, and extraction also uses tarfile's "data" filter.
"""

import json
import os
import tarfile
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path, PurePosixPath

from umnist import storage
from umnist.errors import UmnistError
from umnist.fileio import atomic_path, write_json

FORMAT = "umnist-shards/1"
INDEX = "index.json"


def _normalised(info: tarfile.TarInfo) -> tarfile.TarInfo:
    """Owner-free members, so a shard's bytes depend only on its files' names, contents and times."""
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    return info


def _batches(files: Iterable[Path], root: Path | None, max_files: int, max_bytes: int):
    """Group (member name, path) pairs into shards of at most `max_files` files and `max_bytes` bytes
    (a single larger file gets a shard of its own)."""
    batch, size = [], 0
    for path in files:
        path = Path(path)
        if not path.is_file():
            raise UmnistError(f"{path}: no such file to put in a shard")
        name = path.relative_to(root).as_posix() if root else path.name
        length = path.stat().st_size
        if batch and (len(batch) == max_files or size + length > max_bytes):
            yield batch
            batch, size = [], 0
        batch.append((name, path))
        size += length
    if batch:
        yield batch


def write_shards(files: Iterable[str | os.PathLike], dest: str | os.PathLike, *, root: str | os.PathLike |
                 None = None, max_files: int = 1000, max_bytes: int = 1 << 30) -> dict:
    """Pack `files` into shards at `dest` (a directory or an s3:// / minio:// prefix); return the index.

    Member names are the paths relative to `root` (or the bare file names without it) and must be unique.
    """
    if max_files < 1 or max_bytes < 1:
        raise UmnistError(f"shards: max_files={max_files} and max_bytes={max_bytes} must be positive")
    root = Path(root) if root is not None else None
    remote = storage.is_remote(dest)
    index = {"format": FORMAT, "files": 0, "bytes": 0, "shards": []}
    seen: set[str] = set()
    uploaded: dict[str, int] = {}
    with tempfile.TemporaryDirectory(prefix="umnist-shards-") as work:
        if remote:
            storage.begin_prefix(str(dest))
        with atomic_path(Path(work) / "set" if remote else dest) as out:
            out.mkdir()
            for number, batch in enumerate(_batches(files, root, max_files, max_bytes)):
                shard = out / f"shard-{number:05d}.tar"
                with tarfile.open(shard, "w", format=tarfile.PAX_FORMAT) as tar:
                    for name, path in batch:
                        if name in seen:
                            raise UmnistError(f"{path}: member name {name!r} appears twice in the shard set")
                        seen.add(name)
                        tar.add(path, arcname=name, recursive=False, filter=_normalised)
                entry = {"name": shard.name, "files": len(batch), "members": [name for name, _ in batch],
                         "bytes": sum(path.stat().st_size for _, path in batch)}
                index["shards"].append(entry)
                index["files"] += entry["files"]
                index["bytes"] += entry["bytes"]
                if remote:
                    uploaded[shard.name] = shard.stat().st_size
                    storage.upload(shard, _join(dest, shard.name))
                    shard.unlink()
            write_json(out / INDEX, index)
            if remote:
                uploaded[INDEX] = (out / INDEX).stat().st_size
                storage.upload(out / INDEX, _join(dest, INDEX))
                storage.commit_prefix(str(dest), uploaded)
    return index


def _join(dest: str | os.PathLike, name: str) -> str | Path:
    return f"{str(dest).rstrip('/')}/{name}" if storage.is_remote(dest) else Path(dest) / name


def read_index(source: str | os.PathLike) -> dict:
    """The shard set's index; a remote set must be complete (its `_SUCCESS` marker present)."""
    if storage.is_remote(source):
        if storage.read_marker(str(source).rstrip("/")) is None:
            raise UmnistError(f"{source}: incomplete shard set: no _SUCCESS marker")
        with tempfile.TemporaryDirectory(prefix="umnist-shards-") as work:
            text = storage.download(_join(source, INDEX), Path(work) / INDEX).read_text()
    else:
        path = Path(source) / INDEX
        if not path.is_file():
            raise UmnistError(f"{path}: no shard index (not a shard set, or an incomplete one)")
        text = path.read_text()
    try:
        index = json.loads(text)
    except ValueError:
        index = None
    if not isinstance(index, dict) or index.get("format") != FORMAT:
        raise UmnistError(f"{_join(source, INDEX)}: not a {FORMAT} index")
    return index


def _selected(index: dict, source, shards: Iterable[str] | None) -> list[str]:
    names = [entry["name"] for entry in index["shards"]]
    if shards is None:
        return names
    wanted = set(shards)
    unknown = sorted(wanted - set(names))
    if unknown:
        raise UmnistError(f"{source}: no shard named {', '.join(unknown)} in the index")
    return [name for name in names if name in wanted]


def _open_shards(source, shards) -> Iterator[tuple[str, tarfile.TarFile, list[tarfile.TarInfo]]]:
    """Each selected shard opened, with its checked members; remote shards are fetched one at a time."""
    names = _selected(read_index(source), source, shards)
    with tempfile.TemporaryDirectory(prefix="umnist-shards-") as work:
        for name in names:
            uri = str(_join(source, name))
            path = storage.download(uri, Path(work) / name) if storage.is_remote(source) else Path(uri)
            try:
                tar = tarfile.open(path, "r:")
                members = tar.getmembers()
            except (tarfile.TarError, OSError) as exc:
                raise UmnistError(f"{uri}: not a readable tar shard ({exc})") from None
            with tar:
                for member in members:
                    _check_member(uri, member)
                yield uri, tar, members
            if storage.is_remote(source):
                path.unlink()


def _check_member(shard: str, member: tarfile.TarInfo) -> None:
    """Refuse anything but a regular file at a relative path that stays inside the target."""
    name = PurePosixPath(member.name)
    if not member.name or name.is_absolute() or ".." in name.parts:
        raise UmnistError(f"{shard}: unsafe member name {member.name!r} (absolute or escaping with ..)")
    if not member.isreg():
        raise UmnistError(f"{shard}: unsafe member {member.name!r}: only regular files are allowed, "
                          f"not links, directories or devices")


def iter_shards(source: str | os.PathLike,
                shards: Iterable[str] | None = None) -> Iterator[tuple[str, bytes]]:
    """Stream (member name, content) for every file of the set, or of the named `shards` only."""
    for uri, tar, members in _open_shards(source, shards):
        for member in members:
            try:
                data = tar.extractfile(member).read()
            except (tarfile.TarError, OSError) as exc:
                raise UmnistError(f"{uri}: member {member.name!r} unreadable ({exc})") from None
            yield member.name, data


def read_shards(source: str | os.PathLike, dest: str | os.PathLike,
                shards: Iterable[str] | None = None) -> list[Path]:
    """Extract every file of the set (or of the named `shards`) into the directory `dest`, atomically;
    return the extracted paths in index order."""
    extracted = []
    with atomic_path(dest) as out:
        out.mkdir()
        for uri, tar, members in _open_shards(source, shards):
            try:
                tar.extractall(out, members=members, filter="data")
            except (tarfile.TarError, OSError) as exc:
                raise UmnistError(f"{uri}: cannot extract: {exc}") from None
            extracted += [Path(dest) / member.name for member in members]
    return extracted
