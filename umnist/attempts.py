"""Resume a retried training step: its output folder is mirrored to the object store while it trains.

KFP retries a failed step by running its executor again with the same executor input (the Argo compiler puts
the retryStrategy on the executor template; the driver, which chose the output URIs, ran once), so the output
artifact's URI is the same on every attempt, while the pod's disk is new. `Mirror` copies the output folder
to `<output uri>.attempt` every few minutes while training runs; on start, `restore` brings the last copy back
so the trainer resumes from its last checkpoint. A step whose output is a local path (the local runner) has
nothing to mirror. After a successful training the mirror is emptied: the launcher uploads the real output.
"""

import os
import shutil
import sys
import tempfile
import threading
from pathlib import Path

from umnist import storage
from umnist.errors import UmnistError

# Ten minutes: a retry repeats at most that much training, and the 10-100 MB of checkpoints cost seconds.
EVERY_S = 600.0
SKIPPED = ("yolo",)  # the detector's prepared image lists and label caches: rebuilt on every start


def mirror_uri(output_uri: str) -> str:
    return output_uri.rstrip("/") + ".attempt"


def restore(output_uri: str, local: str | os.PathLike, needs: str | os.PathLike) -> bool:
    """Copy an earlier attempt's mirror of this output into `local`; True when it holds `needs` (the file the
    trainer resumes from, e.g. umnist.layout.checkpoint; a relative path is taken relative to `local`)."""
    if not storage.is_remote(output_uri) or not storage.read_marker(mirror_uri(output_uri)):
        return False
    with tempfile.TemporaryDirectory(prefix="umnist-attempt-") as work:
        copy = storage.download(mirror_uri(output_uri), Path(work) / "mirror")
        shutil.copytree(copy, local, dirs_exist_ok=True)
    return (Path(local) / needs).is_file()


class Mirror:
    """`with Mirror(output_uri, local):` uploads `local` to the mirror every `every_s` seconds while the block
    runs (when its files changed), and empties the mirror when the block succeeds. A failed upload is reported
    on stderr and tried again next time: it must not stop the training it protects."""

    def __init__(self, output_uri: str, local: str | os.PathLike, every_s: float = EVERY_S):
        self.uri, self.local, self.every_s = mirror_uri(output_uri), Path(local), every_s
        self.enabled = storage.is_remote(output_uri)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="umnist-mirror", daemon=True)
        self._last: dict[str, tuple[int, int]] = {}

    def __enter__(self) -> "Mirror":
        if self.enabled:
            self._thread.start()
        return self

    def __exit__(self, kind, error, trace) -> None:
        if not self.enabled:
            return
        self._stop.set()
        self._thread.join()
        if kind is None:
            with tempfile.TemporaryDirectory(prefix="umnist-attempt-") as empty:
                storage.upload(empty, self.uri)  # removes every object, leaves an empty marker

    def _run(self) -> None:
        while not self._stop.wait(self.every_s):
            try:
                self.sync()
            except (UmnistError, OSError) as exc:
                print(f"umnist: checkpoint mirror {self.uri} not updated: {exc}", file=sys.stderr)

    def _files(self) -> dict[str, tuple[int, int]]:
        found = {}
        for path in sorted(self.local.rglob("*")):
            name = path.relative_to(self.local)
            if path.is_file() and name.parts[0] not in SKIPPED and not any(p.startswith(".") for p in name.parts):
                stat = path.stat()
                found[name.as_posix()] = (stat.st_mtime_ns, stat.st_size)
        return found

    def sync(self) -> bool:
        """Upload a snapshot of the folder if it changed since the last one; True when uploaded. Files are
        hard-linked into the snapshot first: the trainers replace checkpoints by renaming, never in place."""
        files = self._files() if self.local.is_dir() else {}
        if not files or files == self._last:
            return False
        with tempfile.TemporaryDirectory(prefix="umnist-attempt-", dir=self.local.parent) as work:
            snapshot = Path(work)
            for name in files:
                (snapshot / name).parent.mkdir(parents=True, exist_ok=True)
                try:
                    os.link(self.local / name, snapshot / name)
                except FileNotFoundError:  # replaced between the listing and the link: the next sync has it
                    continue
            storage.upload(snapshot, self.uri)
        self._last = files
        return True
