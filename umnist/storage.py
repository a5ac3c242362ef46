"""Local paths and object-store URIs (`s3://bucket/key`, `minio://bucket/key`) behind one small API.

Every input and output of a stage may live in an S3-compatible store (MinIO or SeaweedFS in a standalone
Kubeflow install, or AWS S3). The endpoint and credentials come ONLY from the environment, which the
cluster fills from a Kubernetes Secret; they are never taken from arguments, configs or code:

    UMNIST_S3_ENDPOINT     `host:port` or `http(s)://host[:port]`; required for minio://,
                           s3:// falls back to AWS (`s3.amazonaws.com`)
    UMNIST_S3_SECURE       `true`/`false`: HTTPS for an endpoint given without a scheme (default true)
    AWS_ACCESS_KEY_ID      access key (anonymous access when unset)
    AWS_SECRET_ACCESS_KEY  secret key
    AWS_SESSION_TOKEN      optional session token
    AWS_REGION             optional region (else AWS_DEFAULT_REGION, else asked of the server)
    UMNIST_S3_ATTEMPTS     tries per object on transient errors (default 5)
    UMNIST_S3_BACKOFF      seconds before the first retry, doubled after each (default 1)

Nothing half-written is ever visible under a final name:
- one object: S3 makes an object visible only once its PUT (or its multipart upload's completion) succeeds,
  so a failed or killed upload leaves nothing; the SDK aborts the unfinished multipart upload.
- a prefix (a directory): its objects are uploaded first, then `_SUCCESS` last, holding the list of files and
  their sizes. Readers refuse a prefix without it (unless told the data was not written by umnist) and fetch
  exactly the listed files; a rewrite removes the old marker first.
- downloads go to a temporary local name and are renamed when complete (`fileio.atomic_path`).
Transient failures (connection refused or reset, timeouts, HTTP 5xx) are retried per object with
exponential backoff; then, like every other failure, they raise a one-line `UmnistError` naming the URI.
Credentials are scrubbed from every message.
"""

import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from umnist.errors import UmnistError
from umnist.fileio import atomic_path

SCHEMES = ("s3://", "minio://")
MARKER = "_SUCCESS"
ENDPOINT_ENV = "UMNIST_S3_ENDPOINT"
SECURE_ENV = "UMNIST_S3_SECURE"
ATTEMPTS_ENV = "UMNIST_S3_ATTEMPTS"
BACKOFF_ENV = "UMNIST_S3_BACKOFF"
SECRET_ENVS = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN")
# S3 error codes worth another try: the server is overloaded or failed, not the request.
TRANSIENT_CODES = {"InternalError", "ServiceUnavailable", "SlowDown", "RequestTimeout", "OperationAborted"}
AUTH_CODES = {"AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch", "ExpiredToken",
              "InvalidToken", "AllAccessDisabled"}
T = TypeVar("T")


def is_remote(uri: str | os.PathLike) -> bool:
    """True for `s3://` and `minio://` URIs, False for local paths."""
    return isinstance(uri, str) and uri.startswith(SCHEMES)


@dataclass(frozen=True)
class Location:
    """A parsed object-store URI: `scheme://bucket/key` (key may be empty: the bucket's root)."""

    uri: str
    bucket: str
    key: str

    def child(self, name: str) -> "Location":
        key = f"{self.key.rstrip('/')}/{name}" if self.key.rstrip("/") else name
        return Location(f"{self.uri.rstrip('/')}/{name}", self.bucket, key)

    @property
    def prefix(self) -> str:
        """The key as a directory prefix: '' for the bucket root, else ending in '/'."""
        return self.key.rstrip("/") + "/" if self.key.rstrip("/") else ""


def parse(uri: str) -> Location:
    if not is_remote(uri):
        raise UmnistError(f"{uri}: not an object-store URI (expected s3://bucket/key or minio://bucket/key)")
    bucket, _, key = uri.split("://", 1)[1].partition("/")
    if not bucket:
        raise UmnistError(f"{uri}: no bucket in the URI")
    return Location(uri, bucket, key)


def scrub(text: str) -> str:
    """`text` on one line with every credential from the environment replaced by ***."""
    for name in SECRET_ENVS:
        value = os.environ.get(name)
        if value and len(value) >= 4:
            text = text.replace(value, "***")
    return " ".join(text.split())


def _endpoint() -> tuple[str, bool]:
    raw = os.environ.get(ENDPOINT_ENV, "").strip()
    if not raw:
        return "s3.amazonaws.com", True
    for scheme, secure in (("https://", True), ("http://", False)):
        if raw.startswith(scheme):
            return raw[len(scheme):].rstrip("/"), secure
    flag = os.environ.get(SECURE_ENV, "true").strip().lower()
    if flag not in ("true", "false", "1", "0", "yes", "no"):
        raise UmnistError(f"{SECURE_ENV}={flag!r}: expected true or false")
    return raw, flag in ("true", "1", "yes")


def client(location: Location):
    """A MinIO SDK client for the environment's endpoint, with the SDK's own retries off (ours back off)."""
    import certifi
    import minio
    import urllib3

    if location.uri.startswith("minio://") and not os.environ.get(ENDPOINT_ENV):
        raise UmnistError(f"{location.uri}: set {ENDPOINT_ENV} to the object store (e.g. http://host:9000)")
    endpoint, secure = _endpoint()
    http = urllib3.PoolManager(
        timeout=urllib3.Timeout(connect=10, read=300), retries=False, maxsize=8,
        cert_reqs="CERT_REQUIRED", ca_certs=os.environ.get("SSL_CERT_FILE") or certifi.where())
    try:
        return minio.Minio(
            endpoint, access_key=os.environ.get("AWS_ACCESS_KEY_ID") or None,
            secret_key=os.environ.get("AWS_SECRET_ACCESS_KEY") or None,
            session_token=os.environ.get("AWS_SESSION_TOKEN") or None, secure=secure,
            region=os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or None,
            http_client=http)
    except ValueError as exc:
        raise UmnistError(f"{location.uri}: bad object-store settings: {scrub(str(exc))}") from None


def _is_transient(exc: BaseException) -> bool:
    """Worth another try: the network or the server failed, not the request."""
    from minio.error import InvalidResponseError, S3Error, ServerError

    if isinstance(exc, S3Error):
        return exc.code in TRANSIENT_CODES or exc.response.status >= 500
    if isinstance(exc, ServerError):
        return exc.status_code >= 500
    if isinstance(exc, InvalidResponseError):  # a non-XML answer, e.g. a proxy's 502 page
        return getattr(exc, "_code", 0) >= 500
    return not isinstance(exc, ValueError)


def _describe(exc: BaseException) -> str:
    from minio.error import S3Error

    if isinstance(exc, S3Error):
        if exc.code in ("NoSuchKey", "NoSuchBucket"):
            return f"{'no such bucket' if exc.code == 'NoSuchBucket' else 'no such object'} ({exc.code})"
        if exc.code in AUTH_CODES:
            return (f"access refused ({exc.code}): check AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY "
                    f"and {ENDPOINT_ENV}")
        return f"object store error {exc.code}: {exc.message}"
    return f"{type(exc).__name__}: {exc}"


def retrying(uri: str, operation: Callable[[], T]) -> T:
    """Run `operation` (one request or one object transfer), retrying transient errors with backoff.

    Local file errors (OSError other than network ones) pass through untouched for the caller to name.
    """
    import urllib3
    from minio.error import MinioException

    attempts = max(1, int(os.environ.get(ATTEMPTS_ENV, "5")))
    delay = float(os.environ.get(BACKOFF_ENV, "1"))
    attempt = 1
    while True:
        try:
            return operation()
        except (MinioException, ValueError, urllib3.exceptions.HTTPError, ConnectionError,
                TimeoutError) as exc:
            if not _is_transient(exc):
                raise UmnistError(scrub(f"{uri}: {_describe(exc)}")) from None
            if attempt >= attempts:
                raise UmnistError(scrub(f"{uri}: object store unreachable after {attempts} attempts "
                                        f"({_describe(exc)})")) from None
        time.sleep(delay)
        delay *= 2
        attempt += 1


def _object_exists(cl, loc: Location) -> bool:
    from minio.error import S3Error

    def stat():
        try:
            cl.stat_object(loc.bucket, loc.key)
            return True
        except S3Error as exc:
            if exc.code in ("NoSuchKey", "NoSuchObject", "NotFound"):
                return False
            raise

    return bool(loc.key) and not loc.key.endswith("/") and retrying(loc.uri, stat)


def _list(cl, loc: Location) -> dict[str, int]:
    """Relative name -> size of every object under the prefix `loc`."""
    prefix = loc.prefix
    return retrying(loc.uri, lambda: {
        obj.object_name[len(prefix):]: obj.size
        for obj in cl.list_objects(loc.bucket, prefix=prefix, recursive=True)
        if not obj.is_dir})


def list_files(uri: str | os.PathLike) -> list[str]:
    """Relative names of the files under a local directory or an object-store prefix (marker excluded)."""
    if not is_remote(uri):
        root = Path(uri)
        if not root.is_dir():
            raise UmnistError(f"{root}: not a directory")
        return sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())
    loc = parse(str(uri))
    return sorted(name for name in _list(client(loc), loc) if name != MARKER)


def read_marker(uri: str) -> dict[str, int] | None:
    """The completed prefix's file list (name -> size) from its `_SUCCESS` marker, or None when absent."""
    loc = parse(uri)
    cl = client(loc)
    marker = loc.child(MARKER)
    if not _object_exists(cl, marker):
        return None

    def get():
        response = cl.get_object(marker.bucket, marker.key)
        try:
            return response.read()
        finally:
            response.close()
            response.release_conn()

    try:
        return json.loads(retrying(marker.uri, get))["files"]
    except (ValueError, KeyError, TypeError):
        raise UmnistError(f"{marker.uri}: not a umnist completion marker") from None


def download(uri: str, local_path: str | os.PathLike, require_marker: bool = True,
             progress: Callable[[int], None] | None = None) -> Path:
    """Fetch an object to a file, or a prefix to a directory; return the local path.

    A prefix must carry the `_SUCCESS` marker that `upload` writes last, and exactly its listed files are
    fetched; `require_marker=False` fetches everything under a prefix that umnist did not write (the
    competition images a user copied into a bucket). `progress(n)` is called with bytes as they arrive.
    """
    loc = parse(uri)
    cl = client(loc)
    local = Path(local_path)
    if _object_exists(cl, loc):
        with atomic_path(local) as tmp:
            _get(cl, loc, tmp, progress)
        return local
    files = read_marker(uri)
    if files is None:
        present = _list(cl, loc)
        if not present:
            raise UmnistError(f"{uri}: no such object or prefix")
        if require_marker:
            raise UmnistError(f"{uri}: incomplete upload: no {MARKER} marker (written last by umnist)")
        files = {name: size for name, size in present.items() if name != MARKER}
    with atomic_path(local) as tmp:
        tmp.mkdir()
        for name, size in sorted(files.items()):
            target = _safe_join(tmp, name, uri)
            _get(cl, loc.child(name), target, progress)
            if target.stat().st_size != size:
                raise UmnistError(f"{loc.child(name).uri}: size {target.stat().st_size} != {size} listed")
    return local


def _safe_join(root: Path, name: str, uri: str) -> Path:
    parts = Path(name).parts
    if not name or Path(name).is_absolute() or ".." in parts:
        raise UmnistError(f"{uri}: refusing object name {name!r} (escapes the target directory)")
    return root.joinpath(*parts)


def _get(cl, loc: Location, target: Path, progress) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(target.name + ".partial")

    def fetch():
        response = cl.get_object(loc.bucket, loc.key)
        try:
            with open(partial, "wb") as out:
                for chunk in response.stream(1 << 20):
                    out.write(chunk)
                    if progress:
                        progress(len(chunk))
        finally:
            response.close()
            response.release_conn()

    try:
        retrying(loc.uri, fetch)
        os.replace(partial, target)
    finally:
        partial.unlink(missing_ok=True)


class _Progress:
    """Adapts a `progress(n_bytes)` callable to the SDK's progress-thread protocol."""

    def __init__(self, callback: Callable[[int], None]):
        self.callback = callback

    def set_meta(self, object_name: str, total_length: int) -> None:
        pass

    def update(self, size: int) -> None:
        self.callback(size)


def _put(cl, loc: Location, source: Path, progress) -> None:
    def put():
        cl.fput_object(loc.bucket, loc.key, str(source), progress=_Progress(progress) if progress else None)

    if not source.is_file():
        raise UmnistError(f"{source}: no such file to upload")
    retrying(loc.uri, put)


def upload(local_path: str | os.PathLike, uri: str,
           progress: Callable[[int], None] | None = None) -> str:
    """Store a file as one object, or a directory as a prefix completed by `_SUCCESS`; return the URI.

    A URI ending in '/' receives a file under its own name. Objects left under the prefix by an earlier
    upload and not part of this one are deleted before the marker is written.
    """
    source = Path(local_path)
    loc = parse(uri)
    cl = client(loc)
    if source.is_file():
        if uri.endswith("/"):
            loc = loc.child(source.name)
        _put(cl, loc, source, progress)
        return loc.uri
    if not source.is_dir():
        raise UmnistError(f"{source}: no such file or directory to upload")
    begin_prefix(loc.uri)
    files = {}
    for path in sorted(p for p in source.rglob("*") if p.is_file()):
        name = path.relative_to(source).as_posix()
        if name == MARKER:
            continue
        _put(cl, loc.child(name), path, progress)
        files[name] = path.stat().st_size
    commit_prefix(loc.uri, files)
    return loc.uri


def begin_prefix(uri: str) -> None:
    """Remove a prefix's completion marker before rewriting it, so no reader sees a mixed state as done."""
    loc = parse(uri)
    cl = client(loc)
    marker = loc.child(MARKER)
    retrying(marker.uri, lambda: cl.remove_object(marker.bucket, marker.key))


def commit_prefix(uri: str, files: dict[str, int]) -> None:
    """Delete stale objects under the prefix, then write `_SUCCESS` listing `files` (name -> size)."""
    loc = parse(uri)
    cl = client(loc)
    for name in sorted(set(_list(cl, loc)) - set(files) - {MARKER}):
        stale = loc.child(name)
        retrying(stale.uri, lambda stale=stale: cl.remove_object(stale.bucket, stale.key))
    body = (json.dumps({"files": files}, indent=1, sort_keys=True) + "\n").encode()
    marker = loc.child(MARKER)

    def put():
        import io

        cl.put_object(marker.bucket, marker.key, io.BytesIO(body), len(body), content_type="application/json")

    retrying(marker.uri, put)


def fetch(source: str | os.PathLike, workdir: str | os.PathLike, require_marker: bool = True) -> Path:
    """A local path for `source`: local paths are checked and returned as they are, URIs are downloaded
    into `workdir` (under the URI's last name) first."""
    if not is_remote(source):
        path = Path(source)
        if not path.exists():
            raise UmnistError(f"{path}: no such file or directory")
        return path
    name = str(source).rstrip("/").rsplit("/", 1)[-1] or parse(str(source)).bucket
    return download(str(source), Path(workdir) / name, require_marker=require_marker)
