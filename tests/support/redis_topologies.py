"""Real Redis topologies for the scale-out tests (tests/stores/redis_topologies): the documented
ACLs, Sentinel, Cluster and TLS."""

from __future__ import annotations

import contextlib
import re
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import redis as sync_redis

from tests.support.servers import RedisServer, ServerProcess, free_port, wait_for

# -- the least-privilege ACLs of docs/redis.md ------------------------------------

DOC = Path(__file__).resolve().parents[2] / "docs" / "redis.md"
#: The app name the documented ACLs are written for.
APP = "shop"


def documented_acl_lines() -> list[str]:
    """The ``ACL SETUSER`` lines of the ```acl block in docs/redis.md, exactly as written."""
    blocks = re.findall(r"```acl\n(.*?)```", DOC.read_text(), flags=re.S)
    assert len(blocks) == 1, "docs/redis.md must have exactly one ```acl block"
    lines = [line.strip() for line in blocks[0].splitlines() if line.strip()]
    assert lines and all(line.startswith("ACL SETUSER ") for line in lines), lines
    return lines


# -- TLS, Sentinel and Cluster set-ups ------------------------------------------------


def _run(*args: str, cwd: Path) -> None:
    subprocess.run(args, cwd=cwd, check=True, capture_output=True, timeout=60)


# -- TLS ---------------------------------------------------------------------------


@dataclass(frozen=True)
class TlsFiles:
    ca: Path
    cert: Path
    key: Path
    #: A second, unrelated CA: the "wrong CA" a misconfigured client trusts.
    other_ca: Path


def make_tls_files(directory: Path) -> TlsFiles:
    """A throwaway CA, a server certificate for 127.0.0.1 signed by it, and an unrelated CA."""
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    for name in ("ca", "other-ca"):
        _run(
            "openssl", "req", "-x509", *ec, "-keyout", f"{name}.key", "-out", f"{name}.pem",
            "-days", "2", "-subj", f"/CN=spa-version test {name}", cwd=directory,
        )  # fmt: skip
    _run("openssl", "req", "-new", *ec, "-keyout", "server.key", "-out", "server.csr",
         "-subj", "/CN=127.0.0.1", cwd=directory)  # fmt: skip
    (directory / "san.cnf").write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    _run(
        "openssl", "x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
        "-CAcreateserial", "-out", "server.pem", "-days", "2", "-extfile", "san.cnf", cwd=directory,
    )  # fmt: skip
    return TlsFiles(
        directory / "ca.pem", directory / "server.pem", directory / "server.key", directory / "other-ca.pem"
    )


class TlsRedisServer(RedisServer):
    """A redis-server with a TLS port, plus its plain port for the test's own admin commands."""

    def __init__(self, tls: TlsFiles) -> None:
        self.tls_port = free_port()
        super().__init__(
            "--tls-port", str(self.tls_port),
            "--tls-cert-file", str(tls.cert),
            "--tls-key-file", str(tls.key),
            "--tls-ca-cert-file", str(tls.ca),
            "--tls-auth-clients", "no",
        )  # fmt: skip

    def tls_url(self, ca: Path, **params: object) -> str:
        query = "&".join(f"{k}={v}" for k, v in {"ssl_ca_certs": ca, **params}.items())
        return f"rediss://127.0.0.1:{self.tls_port}/0?{query}"


# -- Sentinel ----------------------------------------------------------------------


class SentinelSetup:
    """A master, one replica and one real ``redis-sentinel`` (quorum 1) watching them."""

    SERVICE = "spa-test-master"

    def __init__(self) -> None:
        self.master = RedisServer()
        self.replica = RedisServer()
        self.port = free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="spa-sentinel-"))
        self.sentinel: ServerProcess | None = None

    def start(self) -> None:
        self.master.start()
        self.replica.extra_args = ("--replicaof", "127.0.0.1", str(self.master.port))
        self.replica.start()
        conf = self.dir / "sentinel.conf"
        conf.write_text(
            f"port {self.port}\nbind 127.0.0.1\ndir {self.dir}\n"
            f"sentinel monitor {self.SERVICE} 127.0.0.1 {self.master.port} 1\n"
            f"sentinel down-after-milliseconds {self.SERVICE} 2000\n"
            f"sentinel failover-timeout {self.SERVICE} 10000\n"
        )
        binary = shutil.which("redis-sentinel")
        if binary is None:
            raise RuntimeError("redis-sentinel is not installed (make system-deps installs it)")
        self.sentinel = ServerProcess(
            "redis-sentinel", {}, command=[binary, str(conf)], port=self.port, cwd=self.dir
        )
        self.sentinel.start()
        admin = self.sentinel_client()
        try:
            wait_for(lambda: self._ping(admin), timeout=10)
            # Sentinel learns of the replica from the master's INFO; failover needs it.
            wait_for(lambda: self._replica_known(admin), timeout=30, interval=0.2)
        finally:
            admin.close()

    def sentinel_client(self) -> sync_redis.Redis:
        return sync_redis.Redis(port=self.port, socket_timeout=5, decode_responses=True)

    @staticmethod
    def _ping(client: sync_redis.Redis) -> bool:
        try:
            return bool(client.ping())
        except sync_redis.ConnectionError:
            return False

    def _replica_known(self, admin: sync_redis.Redis) -> bool:
        replicas = admin.execute_command("SENTINEL", "REPLICAS", self.SERVICE)
        for entry in replicas:
            fields = dict(zip(entry[::2], entry[1::2], strict=True)) if isinstance(entry, list) else entry
            if int(fields.get("port", 0)) == self.replica.port and "s_down" not in fields.get("flags", ""):
                return fields.get("master-link-status") == "ok"
        return False

    def master_port(self) -> int:
        admin = self.sentinel_client()
        try:
            _host, port = admin.execute_command("SENTINEL", "GET-MASTER-ADDR-BY-NAME", self.SERVICE)
            return int(port)
        finally:
            admin.close()

    def failover(self, timeout: float = 30.0) -> None:
        """``SENTINEL FAILOVER``, polled while Sentinel still finds no good replica."""
        admin = self.sentinel_client()

        def attempt() -> bool:
            try:
                admin.execute_command("SENTINEL", "FAILOVER", self.SERVICE)
                return True
            except sync_redis.ResponseError as exc:
                if "NOGOODSLAVE" not in str(exc) and "INPROG" not in str(exc):
                    raise
                return False

        try:
            wait_for(attempt, timeout=timeout, interval=0.2)
        finally:
            admin.close()

    def url(self, **params: object) -> str:
        query = "&".join(f"{k}={v}" for k, v in params.items())
        return f"redis+sentinel://127.0.0.1:{self.port}/{self.SERVICE}" + (f"?{query}" if query else "")

    def close(self) -> None:
        if self.sentinel is not None:
            self.sentinel.close()
        self.replica.close()
        self.master.close()
        shutil.rmtree(self.dir, ignore_errors=True)


@contextlib.contextmanager
def sentinel_setup() -> Iterator[SentinelSetup]:
    setup = SentinelSetup()
    try:
        setup.start()
        yield setup
    finally:
        setup.close()


# -- Cluster -----------------------------------------------------------------------


def _port_is_free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _cluster_port() -> int:
    """A free port whose cluster-bus port (port + 10000) is free and valid too."""
    for _ in range(200):  # bounded
        port = free_port()
        if port < 55000 and _port_is_free(port + 10000):
            return port
    raise RuntimeError("no free port pair for a cluster node")


class ClusterSetup:
    """Three masters on loopback, joined by ``redis-cli --cluster create``."""

    def __init__(self) -> None:
        self.nodes = [
            RedisServer(
                "--cluster-enabled",
                "yes",
                "--cluster-config-file",
                "nodes.conf",
                "--cluster-node-timeout",
                "5000",
            )  # fmt: skip
            for _ in range(3)
        ]

    def start(self) -> None:
        for node in self.nodes:
            node.port = _cluster_port()
            node.start()
        cli = shutil.which("redis-cli")
        if cli is None:
            raise RuntimeError("redis-cli is not installed (it comes with redis-server)")
        addresses = [f"127.0.0.1:{node.port}" for node in self.nodes]
        subprocess.run(
            [cli, "--cluster", "create", *addresses, "--cluster-replicas", "0", "--cluster-yes"],
            check=True, capture_output=True, timeout=60,
        )  # fmt: skip
        wait_for(self._ok, timeout=30, interval=0.1)

    def _ok(self) -> bool:
        return all("cluster_state:ok" in self.command(node, "CLUSTER", "INFO") for node in self.nodes)

    @staticmethod
    def command(node: RedisServer, *args: str) -> str:
        client = sync_redis.Redis(port=node.port, socket_timeout=5, decode_responses=True)
        try:
            return str(client.execute_command(*args))
        finally:
            client.close()

    def owner_port(self, key: str) -> int:
        """The port of the master that owns *key*'s slot."""
        client = sync_redis.Redis(port=self.nodes[0].port, socket_timeout=5, decode_responses=True)
        try:
            slot = int(client.execute_command("CLUSTER", "KEYSLOT", key))
            for start, end, master, *_ in client.execute_command("CLUSTER", "SLOTS"):
                if int(start) <= slot <= int(end):
                    return int(master[1])
        finally:
            client.close()
        raise AssertionError(f"no node owns the slot of {key!r}")

    def url(self, *nodes: RedisServer, **params: object) -> str:
        hosts = ",".join(f"127.0.0.1:{node.port}" for node in nodes or self.nodes)
        query = "&".join(f"{k}={v}" for k, v in params.items())
        return f"redis+cluster://{hosts}" + (f"?{query}" if query else "")

    def close(self) -> None:
        for node in self.nodes:
            node.close()


@contextlib.contextmanager
def cluster_setup() -> Iterator[ClusterSetup]:
    setup = ClusterSetup()
    try:
        setup.start()
        yield setup
    finally:
        setup.close()
