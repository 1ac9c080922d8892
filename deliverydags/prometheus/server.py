"""A private Prometheus server per run: free loopback port, own config and data dir.

It runs in its own process group (stopped with ``procs.kill_group``, so nothing outlives
the run) and discovers its scrape target through a file (file_sd), because the reference
target's port is only known once the run has started it.
"""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path
from urllib.parse import urlsplit

import orjson
import yaml

from deliverydags.procs import _last_line, child_env, kill_group, popen

from .errors import PrometheusError

JOB = "dd_target"  # the job label of the scraped target
INSTALL_HINT = (
    "install it with scripts/install_prometheus.sh (Debian: "
    "apt-get install --no-install-recommends prometheus) or set its path"
)
READY_TIMEOUT_S = 30.0
START_ATTEMPTS = 3  # the free port may be taken between probing it and binding it


def find_prometheus(binary: str | None = None) -> str:
    """The server binary's path, or PrometheusError saying how to install it."""
    found = shutil.which(binary or "prometheus")
    if not found:
        raise PrometheusError(f"no prometheus binary ({binary or 'prometheus'}): {INSTALL_HINT}")
    return found


def scrape_labels(metrics_url: str) -> dict:
    """A file_sd entry for ``metrics_url`` (scheme and path travel as labels)."""
    parts = urlsplit(metrics_url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise PrometheusError(f"metrics URL must be http(s)://host:port/path, not {metrics_url!r}")
    return {
        "targets": [parts.netloc],
        "labels": {"__scheme__": parts.scheme, "__metrics_path__": parts.path or "/metrics"},
    }


class PrometheusServer:
    """``start()`` returns once /-/ready answers; ``scrape(url)`` sets the target;
    ``stop()`` ends the process group. Usable as a context manager."""

    def __init__(
        self, work_dir: Path, binary: str | None = None, scrape_interval_s: float = 1.0
    ) -> None:
        self.work_dir = work_dir
        self.binary = binary
        self.interval_s = scrape_interval_s
        self.url = ""
        self.proc: subprocess.Popen | None = None
        self._targets = work_dir / "targets.json"
        self._log_path = work_dir / "prometheus.log"

    def start(self) -> PrometheusServer:
        binary = find_prometheus(self.binary)
        self.work_dir.mkdir(parents=True, exist_ok=True)
        if not self._targets.exists():
            self._targets.write_bytes(b"[]")
        config = self.work_dir / "prometheus.yml"
        config.write_text(yaml.safe_dump(self._config()))
        for attempt in range(START_ATTEMPTS):
            port = _free_port()
            self.url = f"http://127.0.0.1:{port}"
            try:
                self._launch(binary, config, port)
                return self
            except PrometheusError:
                if attempt == START_ATTEMPTS - 1 or "address already in use" not in _last_line(
                    self._log_path
                ):
                    raise
        return self  # unreachable

    def _config(self) -> dict:
        every = f"{int(self.interval_s * 1000)}ms"
        return {
            "global": {"scrape_interval": every, "scrape_timeout": every},
            "scrape_configs": [
                {
                    "job_name": JOB,
                    "file_sd_configs": [{"files": [str(self._targets)], "refresh_interval": "1s"}],
                }
            ],
        }

    def _launch(self, binary: str, config: Path, port: int) -> None:
        argv = [
            binary,
            f"--config.file={config}",
            f"--storage.tsdb.path={self.work_dir / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--web.enable-remote-write-receiver",  # k6's experimental-prometheus-rw output
            "--storage.tsdb.retention.time=1d",
            "--log.level=warn",
        ]
        with open(self._log_path, "ab") as log:
            self.proc = popen(  # its own group, and it dies with us: never orphaned
                argv,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                env=child_env(),  # no secrets
            )
        try:
            ready = self._wait_ready()
        except BaseException:  # interrupted while waiting: no orphan
            self.stop()
            raise
        if ready:
            return
        self.stop()
        detail = _last_line(self._log_path) or f"not ready within {READY_TIMEOUT_S:.0f} s"
        raise PrometheusError(f"prometheus did not start: {detail}")

    def _wait_ready(self) -> bool:
        assert self.proc is not None
        deadline = time.monotonic() + READY_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                return False
            with (
                contextlib.suppress(urllib.error.URLError, OSError),
                urllib.request.urlopen(f"{self.url}/-/ready", timeout=1) as resp,
            ):
                if resp.status == 200:
                    return True
            time.sleep(0.1)
        return False

    def scrape(self, metrics_url: str) -> None:
        """Point the scrape job at ``metrics_url`` (picked up within a second or so)."""
        tmp = self._targets.with_suffix(".tmp")
        tmp.write_bytes(orjson.dumps([scrape_labels(metrics_url)]))
        tmp.replace(self._targets)  # atomic: Prometheus never reads half a file

    @property
    def remote_write_url(self) -> str:
        return f"{self.url}/api/v1/write"

    def stop(self) -> None:
        if self.proc is not None:
            kill_group(self.proc, grace_s=5.0)

    def __enter__(self) -> PrometheusServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
