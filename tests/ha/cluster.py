"""NATS servers with JetStream on free loopback ports, started from the installed ``nats-server``:
one node (R1) or a three-node cluster (R3), store directories under a given directory. Used by
the HA tests and ``scripts/failover.py``."""

from __future__ import annotations

import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def nats_server_binary() -> str | None:
    return shutil.which("nats-server") or next(
        (p for p in ("/usr/sbin/nats-server", "/usr/bin/nats-server") if Path(p).exists()), None)


class NatsNode:
    def __init__(self, name: str, store: Path, port: int, cluster_port: int | None, routes: list[int],
                 log: Path) -> None:
        self.name, self.store, self.port, self.cluster_port, self.routes, self.log = (
            name, store, port, cluster_port, routes, log)
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    def start(self) -> None:
        binary = nats_server_binary()
        if binary is None:
            raise RuntimeError("nats-server is not installed")
        cmd = [binary, "-a", "127.0.0.1", "-p", str(self.port), "-js", "-sd", str(self.store), "-n", self.name]
        if self.cluster_port is not None:
            cmd += ["--cluster_name", "omn", "--cluster", f"nats://127.0.0.1:{self.cluster_port}",
                    "--routes", ",".join(f"nats://127.0.0.1:{p}" for p in self.routes)]
        self.proc = subprocess.Popen(cmd, stdout=self.log.open("ab"), stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"nats-server {self.name} exited with {self.proc.returncode} (see {self.log})")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(f"nats-server {self.name} did not listen on {self.port}")

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=10)
        self.proc = None

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        self.proc = None


class NatsCluster:
    """``size`` nodes (1 = a single JetStream server, 3 = a cluster with routes between all)."""

    def __init__(self, directory: Path, size: int = 3) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        ports = [free_port() for _ in range(size)]
        cluster_ports = [free_port() for _ in range(size)] if size > 1 else [None] * size
        self.nodes = [
            NatsNode(f"n{i + 1}", directory / f"n{i + 1}", ports[i], cluster_ports[i],
                     [p for j, p in enumerate(cluster_ports) if j != i and p is not None], directory / f"n{i + 1}.log")
            for i in range(size)
        ]

    @property
    def servers(self) -> str:
        return ",".join(f"127.0.0.1:{n.port}" for n in self.nodes)

    def url(self, stream: str = "OMN") -> str:
        return f"nats://{self.servers}/{stream}"

    def start(self) -> NatsCluster:
        for node in self.nodes:
            node.start()
        return self

    def stop(self) -> None:
        for node in self.nodes:
            node.stop()
