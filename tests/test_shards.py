"""umnist.shards: tar shard sets in a directory and on a real S3 server; unsafe members refused."""

import io
import os
import tarfile
from pathlib import Path

import pytest

from umnist import shards, storage
from umnist.errors import UmnistError
from umnist.fileio import write_json


def make_files(root: Path, count: int, size: int = 100) -> list[Path]:
    paths = []
    for i in range(count):
        path = root / f"{'train' if i % 2 else 'val'}" / f"scene_{i:03d}.jpg"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(os.urandom(size))
        paths.append(path)
    return paths


@pytest.fixture(params=["local", "s3"])
def destination(request, tmp_path):
    if request.param == "local":
        return tmp_path / "set"
    return request.getfixturevalue("s3_uri") + "/set"


def test_round_trip_in_index_order(destination, tmp_path):
    files = make_files(tmp_path / "src", 7)
    index = shards.write_shards(files, destination, root=tmp_path / "src", max_files=3)
    assert [(e["name"], e["files"]) for e in index["shards"]] == [
        ("shard-00000.tar", 3), ("shard-00001.tar", 3), ("shard-00002.tar", 1)]
    assert index["files"] == 7 and index["bytes"] == 700
    assert shards.read_index(destination) == index
    names = [p.relative_to(tmp_path / "src").as_posix() for p in files]
    streamed = list(shards.iter_shards(destination))
    assert streamed == [(name, (tmp_path / "src" / name).read_bytes()) for name in names]
    extracted = shards.read_shards(destination, tmp_path / "out")
    assert [p.relative_to(tmp_path / "out").as_posix() for p in extracted] == names
    assert [p.read_bytes() for p in extracted] == [(tmp_path / "src" / n).read_bytes() for n in names]
    only = shards.read_shards(destination, tmp_path / "one", shards=["shard-00001.tar"])
    assert [p.name for p in only] == ["scene_003.jpg", "scene_004.jpg", "scene_005.jpg"]
    if storage.is_remote(destination):
        assert storage.list_files(destination) == ["index.json", *(e["name"] for e in index["shards"])]


@pytest.mark.parametrize("sizes, max_bytes, expected", [
    ([100, 100, 100, 100], 250, [2, 2]),
    ([100, 500, 100], 250, [1, 1, 1]),  # a file above the cap gets a shard of its own
    ([10] * 5, 10_000, [5])])
def test_shards_respect_the_byte_cap(tmp_path, sizes, max_bytes, expected):
    files = []
    for i, size in enumerate(sizes):
        files.append(tmp_path / f"f{i}.bin")
        files[-1].write_bytes(b"x" * size)
    index = shards.write_shards(files, tmp_path / "set", max_bytes=max_bytes)
    assert [e["files"] for e in index["shards"]] == expected


def test_bad_requests_are_clear_errors(tmp_path):
    twins = [make_files(tmp_path / "a", 1)[0], make_files(tmp_path / "b", 1)[0]]
    with pytest.raises(UmnistError, match="member name 'scene_000.jpg' appears twice"):
        shards.write_shards(twins, tmp_path / "set")
    with pytest.raises(UmnistError, match="missing.jpg: no such file to put in a shard"):
        shards.write_shards([tmp_path / "missing.jpg"], tmp_path / "set")
    with pytest.raises(UmnistError, match="max_files=0 and max_bytes=1 must be positive"):
        shards.write_shards(twins, tmp_path / "set", max_files=0, max_bytes=1)
    assert not (tmp_path / "set").exists()
    with pytest.raises(UmnistError, match="index.json: no shard index"):
        shards.read_index(tmp_path)
    shards.write_shards(twins[:1], tmp_path / "set")
    with pytest.raises(UmnistError, match="no shard named shard-00009.tar in the index"):
        shards.read_shards(tmp_path / "set", tmp_path / "out", shards=["shard-00009.tar"])
    with open(tmp_path / "set" / "shard-00000.tar", "r+b") as shard:
        shard.truncate(700)  # the header survives, the content does not
    with pytest.raises(UmnistError, match="shard-00000.tar: .*(unreadable|not a readable tar shard)"):
        list(shards.iter_shards(tmp_path / "set"))
    assert not (tmp_path / "out").exists()


def test_remote_set_without_marker_is_incomplete(s3_uri, tmp_path):
    shards.write_shards(make_files(tmp_path / "src", 2), s3_uri, max_files=1)
    storage.begin_prefix(s3_uri)  # what a writer killed mid-way leaves: shards but no marker
    with pytest.raises(UmnistError, match="incomplete shard set: no _SUCCESS marker"):
        list(shards.iter_shards(s3_uri))


def member(name: str, kind: bytes = tarfile.REGTYPE, link: str = "", data: bytes = b"x") -> tuple:
    info = tarfile.TarInfo(name)
    info.type, info.linkname, info.size = kind, link, len(data) if kind == tarfile.REGTYPE else 0
    return info, io.BytesIO(data) if kind == tarfile.REGTYPE else None


@pytest.mark.parametrize("bad, reason", [
    (member("/etc/passwd-umnist"), "unsafe member name '/etc/passwd-umnist'"),
    (member("../escape.jpg"), "unsafe member name '../escape.jpg'"),
    (member("ok/../../escape.jpg"), "unsafe member name 'ok/../../escape.jpg'"),
    (member("link.jpg", tarfile.SYMTYPE, "/etc/passwd"), "unsafe member 'link.jpg': only regular files"),
    (member("hard.jpg", tarfile.LNKTYPE, "../../outside"), "unsafe member 'hard.jpg': only regular files"),
    (member("dev.jpg", tarfile.CHRTYPE), "unsafe member 'dev.jpg': only regular files"),
    (member("subdir", tarfile.DIRTYPE), "unsafe member 'subdir': only regular files")],
    ids=["absolute", "dotdot", "nested-dotdot", "symlink", "hardlink", "device", "directory"])
def test_unsafe_members_are_refused(tmp_path, bad, reason):
    set_dir = tmp_path / "set"
    set_dir.mkdir()
    with tarfile.open(set_dir / "shard-00000.tar", "w") as tar:
        tar.addfile(*member("good.jpg"))
        tar.addfile(*bad)
    write_json(set_dir / "index.json", {"format": shards.FORMAT, "files": 2, "bytes": 2, "shards": [
        {"name": "shard-00000.tar", "files": 2, "bytes": 2, "members": ["good.jpg", bad[0].name]}]})
    with pytest.raises(UmnistError, match=f"shard-00000.tar: {reason}"):
        shards.read_shards(set_dir, tmp_path / "out")
    with pytest.raises(UmnistError, match=f"shard-00000.tar: {reason}"):
        list(shards.iter_shards(set_dir))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["set"]  # nothing extracted anywhere
