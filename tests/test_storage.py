"""umnist.storage against a real S3 server (SeaweedFS on loopback): round trips, errors, outages."""

import os
import threading
import time
from pathlib import Path

import pytest

from tests.s3_server import SECRET_KEY, free_ports
from umnist import storage
from umnist.errors import UmnistError

MIB = 1 << 20


def write_tree(root: Path, files: dict[str, bytes]) -> Path:
    for name, data in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(data)
    return root


def read_tree(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*") if p.is_file()}


@pytest.mark.parametrize("value, expected", [
    ("s3://bkt/a/b.bin", True), ("minio://mlpipeline/", True), ("data/scenes", False),
    ("https://host/x", False), (Path("s3:/bkt/x"), False)])
def test_is_remote(value, expected):
    assert storage.is_remote(value) is expected


@pytest.mark.parametrize("size", [0, 11, 7 * MIB])  # empty, one PUT, a multipart upload
def test_file_round_trip(s3_uri, tmp_path, size):
    source = tmp_path / "scene.bin"
    source.write_bytes(os.urandom(size))
    uri = storage.upload(source, f"{s3_uri}/")
    assert uri == f"{s3_uri}/scene.bin"
    back = storage.download(uri, tmp_path / "back" / "scene.bin")
    assert back.read_bytes() == source.read_bytes()
    assert sorted(p.name for p in back.parent.iterdir()) == ["scene.bin"]  # no temporary left


@pytest.mark.parametrize("scheme", ["s3", "minio"])
def test_prefix_round_trip_replaces_stale_objects(s3_uri, tmp_path, scheme):
    uri = s3_uri.replace("s3://", f"{scheme}://")
    first = write_tree(tmp_path / "first", {"a.txt": b"a", "sub/b.bin": os.urandom(1000), "old.txt": b"o"})
    storage.upload(first, uri)
    assert storage.list_files(uri) == ["a.txt", "old.txt", "sub/b.bin"]
    second = write_tree(tmp_path / "second", {"a.txt": b"A2", "sub/deeper/c.txt": b"c"})
    storage.upload(second, uri)
    assert storage.list_files(uri) == ["a.txt", "sub/deeper/c.txt"]
    assert storage.read_marker(uri) == {"a.txt": 2, "sub/deeper/c.txt": 1}
    assert read_tree(storage.download(uri, tmp_path / "back")) == read_tree(second)
    assert storage.list_files(tmp_path / "back") == ["a.txt", "sub/deeper/c.txt"]


def test_prefix_without_marker_is_refused_unless_foreign(s3_uri, tmp_path):
    source = write_tree(tmp_path / "src", {"1.jpeg": b"one", "2.jpeg": b"two"})
    for path in source.iterdir():
        storage.upload(path, f"{s3_uri}/images/")
    with pytest.raises(UmnistError, match=r"images: incomplete upload: no _SUCCESS marker"):
        storage.download(f"{s3_uri}/images", tmp_path / "back")
    assert not (tmp_path / "back").exists()
    back = storage.fetch(f"{s3_uri}/images/", tmp_path / "work", require_marker=False)
    assert back == tmp_path / "work" / "images" and read_tree(back) == read_tree(source)


def test_fetch_returns_local_paths_unchanged(tmp_path):
    assert storage.fetch(tmp_path, tmp_path / "work") == tmp_path
    with pytest.raises(UmnistError, match="nothing-here: no such file or directory"):
        storage.fetch(tmp_path / "nothing-here", tmp_path / "work")


@pytest.mark.parametrize("suffix, message", [
    ("/missing.bin", "missing.bin: no such object or prefix"),
    ("/missing-dir/", "missing-dir/: no such object or prefix")])
def test_missing_object_is_a_clear_error(s3_uri, tmp_path, suffix, message):
    with pytest.raises(UmnistError, match=message):
        storage.download(s3_uri + suffix, tmp_path / "x")
    assert not (tmp_path / "x").exists()


def test_missing_bucket_and_bad_uris(s3_uri, tmp_path):
    with pytest.raises(UmnistError, match=r"s3://no-such-bucket-here/k: no such bucket \(NoSuchBucket\)"):
        storage.download("s3://no-such-bucket-here/k", tmp_path / "x")
    with pytest.raises(UmnistError, match="no bucket in the URI"):
        storage.download("s3:///key", tmp_path / "x")
    with pytest.raises(UmnistError, match="s3://b/k: .*invalid bucket name b"):
        storage.download("s3://b/k", tmp_path / "x")
    with pytest.raises(UmnistError, match="nope.bin: no such file or directory to upload"):
        storage.upload(tmp_path / "nope.bin", s3_uri + "/")


@pytest.mark.parametrize("key_var, value", [
    ("AWS_SECRET_ACCESS_KEY", "wrong-secret-value-1234"), ("AWS_ACCESS_KEY_ID", "WRONGACCESSKEY")],
    ids=["wrong-secret", "wrong-access-key"])
def test_wrong_credentials_do_not_leak(s3_uri, tmp_path, monkeypatch, key_var, value):
    source = tmp_path / "f.txt"
    source.write_text("x")
    monkeypatch.setenv(key_var, value)
    for action in (lambda: storage.upload(source, f"{s3_uri}/f.txt"),
                   lambda: storage.download(f"{s3_uri}/f.txt", tmp_path / "g")):
        with pytest.raises(UmnistError) as info:
            action()
        message = str(info.value)
        assert message.startswith(f"{s3_uri}/f.txt: access refused") and "\n" not in message
        for secret in (SECRET_KEY, value, os.environ["AWS_ACCESS_KEY_ID"]):
            assert secret not in message and secret not in repr(info.value.__cause__)


def test_unreachable_endpoint_retries_then_fails(s3_uri, tmp_path, monkeypatch):
    monkeypatch.setenv("UMNIST_S3_ENDPOINT", f"127.0.0.1:{free_ports(1)[0]}")
    monkeypatch.setenv("UMNIST_S3_SECURE", "false")
    monkeypatch.setenv("UMNIST_S3_ATTEMPTS", "3")
    monkeypatch.setenv("UMNIST_S3_BACKOFF", "0.1")
    started = time.monotonic()
    with pytest.raises(UmnistError, match=r"f.bin: object store unreachable after 3 attempts \(.*\)$"):
        storage.download(f"{s3_uri}/f.bin", tmp_path / "f.bin")
    assert 0.3 <= time.monotonic() - started < 10  # backoff 0.1 + 0.2 s, then gives up


def test_minio_scheme_needs_an_endpoint(monkeypatch, tmp_path):
    monkeypatch.delenv("UMNIST_S3_ENDPOINT", raising=False)
    with pytest.raises(UmnistError, match="minio://mlpipeline/x: set UMNIST_S3_ENDPOINT"):
        storage.download("minio://mlpipeline/x", tmp_path / "x")


class Outage:
    """A progress callback that kills the server once `after` bytes have moved, and optionally restarts it
    `restart_after` seconds later from another thread (while the transfer is retrying)."""

    def __init__(self, server, after: int, restart_after: float | None):
        self.server, self.after, self.restart_after = server, after, restart_after
        self.moved, self.killed, self.restarter = 0, False, None

    def __call__(self, n: int) -> None:
        self.moved += n
        if not self.killed and self.moved >= self.after:
            self.killed = True
            self.server.stop()
            if self.restart_after is not None:
                self.restarter = threading.Timer(self.restart_after, self.server.start)
                self.restarter.start()


@pytest.fixture
def outage_server(s3_server):
    yield s3_server
    if s3_server.process is None:
        s3_server.start()


def test_upload_outage_leaves_nothing_then_retry_succeeds(s3_uri, tmp_path, monkeypatch, outage_server):
    source = tmp_path / "big.bin"
    source.write_bytes(os.urandom(16 * MIB))  # four 5 MiB multipart parts
    uri = f"{s3_uri}/big.bin"

    monkeypatch.setenv("UMNIST_S3_ATTEMPTS", "1")
    outage = Outage(outage_server, after=6 * MIB, restart_after=None)
    with pytest.raises(UmnistError, match="big.bin: object store unreachable after 1 attempts"):
        storage.upload(source, uri, progress=outage)
    assert outage.killed
    outage_server.start()
    assert storage.list_files(s3_uri) == []  # no half-written object
    with pytest.raises(UmnistError, match="no such object"):
        storage.download(uri, tmp_path / "back.bin")

    monkeypatch.setenv("UMNIST_S3_ATTEMPTS", "8")
    outage = Outage(outage_server, after=6 * MIB, restart_after=0.5)
    storage.upload(source, uri, progress=outage)
    outage.restarter.join()
    assert outage.killed and outage.moved > source.stat().st_size  # the upload started again
    assert storage.download(uri, tmp_path / "back.bin").read_bytes() == source.read_bytes()


def test_download_outage_leaves_no_partial_file_then_retry_succeeds(s3_uri, tmp_path, monkeypatch,
                                                                     outage_server):
    source = write_tree(tmp_path / "src", {f"part{i}.bin": os.urandom(3 * MIB) for i in range(3)})
    storage.upload(source, s3_uri)

    monkeypatch.setenv("UMNIST_S3_ATTEMPTS", "1")
    outage = Outage(outage_server, after=4 * MIB, restart_after=None)
    with pytest.raises(UmnistError, match=r"part[12].bin: object store unreachable after 1 attempts"):
        storage.download(s3_uri, tmp_path / "back", progress=outage)
    outage_server.start()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["src"]  # no partial directory or file

    monkeypatch.setenv("UMNIST_S3_ATTEMPTS", "8")
    outage = Outage(outage_server, after=4 * MIB, restart_after=0.5)
    back = storage.download(s3_uri, tmp_path / "back", progress=outage)
    outage.restarter.join()
    assert outage.killed and read_tree(back) == read_tree(source)
