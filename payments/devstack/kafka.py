"""A real single-node Apache Kafka broker for development and tests (docs/design.md §7).

The broker's jars come from Maven Central through ``mvn`` (see ``pom.xml`` beside this file) into a cache
folder outside the work tree; the broker runs in KRaft combined mode (broker and controller in one JVM) on
127.0.0.1, with the single-node settings transactions need: replication factor 1 and min ISR 1 for the
offsets and transaction-state topics. Without those, ``init_transactions`` waits forever for replicas that
do not exist.
"""

from __future__ import annotations

import base64
import fcntl
import hashlib
import logging
import os
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from types import TracebackType
from typing import Any

from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient

from payments.devstack.errors import DevstackError
from payments.devstack.ports import free_port
from payments.devstack.process import ChildProcess

KAFKA_VERSION = "4.1.1"
_LOG = logging.getLogger(__name__)
# The readiness probe's clients log expected start-up retries ("coordinator load in progress") as
# warnings; only their errors are worth showing to someone running `payments broker`.
_PROBE_LOG = logging.getLogger(f"{__name__}.probe")
_PROBE_LOG.setLevel(logging.ERROR)
# Used by the readiness probe only; fixed so restarts do not pile up transactional ids and groups.
_PROBE_ID = "payments-devstack-readiness"


def default_cache_dir() -> Path:
    """``$PAYMENTS_DEVSTACK_CACHE``, else ``~/.cache/payments-devstack`` (never inside the work tree)."""
    override = os.environ.get("PAYMENTS_DEVSTACK_CACHE")
    return Path(override).expanduser() if override else Path.home() / ".cache" / "payments-devstack"


def require_tool(name: str, debian_package: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise DevstackError(
            f"'{name}' is not on PATH: install the '{debian_package}' package "
            f"(apt-get install -y {debian_package}), or run scripts/setup.sh"
        )
    return path


def require_java() -> str:
    return require_tool("java", "openjdk-17-jre-headless")


def fetch_kafka_jars(cache_dir: Path | None = None) -> Path:
    """Return the folder of Kafka's runtime jars, running ``mvn`` to fill it the first time only.

    A marker file holds the digest of the pom it was fetched with: while it matches, this returns at once
    without a JVM or the network. An interrupted fetch leaves no marker and is redone from scratch. A file
    lock serialises concurrent callers (parallel test workers) so only one of them runs Maven.
    """
    home = (cache_dir or default_cache_dir()) / f"kafka-{KAFKA_VERSION}"
    libs = home / "libs"
    marker = home / "fetch-complete"
    pom_text = (resources.files("payments.devstack") / "pom.xml").read_text(encoding="utf-8")
    digest = hashlib.sha256(pom_text.encode()).hexdigest()
    if _marker_matches(marker, digest):
        return libs
    home.mkdir(parents=True, exist_ok=True)
    with _file_lock(home / ".fetch.lock"):
        if _marker_matches(marker, digest):
            return libs
        mvn = require_tool("mvn", "maven")
        require_java()
        shutil.rmtree(libs, ignore_errors=True)  # jars of an older pom must not stay on the classpath
        # mvn gets its own copy of the pom so that nothing (e.g. target/) is ever written into the package.
        pom = home / "pom.xml"
        pom.write_text(pom_text, encoding="utf-8")
        argv = [mvn, "-B", "-q", "-f", str(pom), "dependency:copy-dependencies", f"-DoutputDirectory={libs}"]
        _LOG.info("fetching Kafka %s jars into %s", KAFKA_VERSION, libs)
        done = subprocess.run(
            argv, cwd=home, stdin=subprocess.DEVNULL, capture_output=True, text=True, check=False
        )
        if done.returncode != 0 or not any(libs.glob("kafka_2.13-*.jar")):
            output = "\n".join((done.stdout + done.stderr).splitlines()[-30:])
            raise DevstackError(
                f"mvn could not fetch the Kafka {KAFKA_VERSION} jars (exit {done.returncode}):\n{output}"
            )
        marker.write_text(digest + "\n", encoding="utf-8")
    return libs


def _marker_matches(marker: Path, digest: str) -> bool:
    try:
        return marker.read_text(encoding="utf-8").strip() == digest
    except FileNotFoundError:
        return False


@contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    with path.open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def random_cluster_id() -> str:
    """What ``kafka-storage random-uuid`` prints (Kafka's ``Uuid``: 16 random bytes, base64url, no padding),
    made here to save a JVM start (about a second). Kafka never hands out an id starting with '-', which
    a command line would read as an option."""
    while True:
        text = base64.urlsafe_b64encode(uuid.uuid4().bytes).rstrip(b"=").decode()
        if not text.startswith("-"):
            return text


@dataclass(frozen=True)
class BrokerPorts:
    client: int
    controller: int

    @staticmethod
    def pick() -> BrokerPorts:
        client = free_port()
        controller = free_port()
        while controller == client:
            controller = free_port()
        return BrokerPorts(client, controller)


def server_properties(data_dir: Path, ports: BrokerPorts, partitions: int) -> dict[str, str]:
    """The broker's configuration: one KRaft node that is both broker and controller, on loopback only."""
    client = f"PLAINTEXT://127.0.0.1:{ports.client}"
    controller = f"CONTROLLER://127.0.0.1:{ports.controller}"
    return {
        "process.roles": "broker,controller",
        "node.id": "1",
        # Kafka 4's dynamic quorum; the storage is formatted with --standalone to make this node its voter.
        "controller.quorum.bootstrap.servers": f"127.0.0.1:{ports.controller}",
        "listeners": f"{client},{controller}",
        "advertised.listeners": f"{client},{controller}",
        "controller.listener.names": "CONTROLLER",
        "inter.broker.listener.name": "PLAINTEXT",
        "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
        "log.dirs": str(data_dir / "kraft-logs"),
        "num.partitions": str(partitions),
        "default.replication.factor": "1",
        "min.insync.replicas": "1",
        "auto.create.topics.enable": "false",
        # Single node: the internal topics' defaults (RF 3, min ISR 2) can never be met here.
        "offsets.topic.replication.factor": "1",
        "transaction.state.log.replication.factor": "1",
        "transaction.state.log.min.isr": "1",
        "share.coordinator.state.topic.replication.factor": "1",
        "share.coordinator.state.topic.min.isr": "1",
        # 8 instead of 50 partitions each: created on first use, so fewer makes the first group join and
        # the first init_transactions faster; one broker gains nothing from more.
        "offsets.topic.num.partitions": "8",
        "transaction.state.log.num.partitions": "8",
        # A consumer group forms as soon as its first member joins instead of waiting 3 s for more.
        "group.initial.rebalance.delay.ms": "0",
        # Let crash tests use session timeouts down to 1 s (default floor 6 s).
        "group.min.session.timeout.ms": "1000",
        # A broker restarted after SIGKILL has to wait for its previous registration's session to expire
        # before it may register again: 4 s instead of 9 s. Heartbeats every 1 s keep a busy broker well
        # inside that.
        "broker.session.timeout.ms": "4000",
        "broker.heartbeat.interval.ms": "1000",
        # Abort transactions of a crashed producer within ~1 s of their timeout (default check: every 10 s).
        "transaction.abort.timed.out.transaction.cleanup.interval.ms": "1000",
        # Sized for 2 cores and a 1 GiB heap; the cleaner's default 128 MiB buffer is for big brokers.
        "num.network.threads": "2",
        "num.io.threads": "4",
        "log.cleaner.dedupe.buffer.size": str(32 * 1024 * 1024),
    }


def _render(properties: Mapping[str, str]) -> str:
    return "".join(f"{key}={value}\n" for key, value in properties.items())


def _read_ports(config: Path) -> BrokerPorts | None:
    """Ports of an earlier run on this data dir, so a rerun keeps the bootstrap address clients know."""
    try:
        lines = config.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        return None
    values = dict(line.split("=", 1) for line in lines if "=" in line)
    ports = {p.split("://")[0]: int(p.rsplit(":", 1)[1]) for p in values.get("listeners", "").split(",") if p}
    if "PLAINTEXT" not in ports or "CONTROLLER" not in ports:
        return None
    return BrokerPorts(ports["PLAINTEXT"], ports["CONTROLLER"])


class KafkaBroker:
    """One Kafka broker process; ``with KafkaBroker() as broker: broker.bootstrap``.

    ``data_dir`` None means a temporary folder deleted by :meth:`stop`. A data dir that already holds a
    formatted broker is reused as is, with its earlier ports, so topics and committed data survive
    :meth:`restart` and a rerun of ``payments broker --data-dir``.
    """

    def __init__(
        self,
        data_dir: Path | None = None,
        *,
        partitions: int = 8,
        cache_dir: Path | None = None,
        heap: str = "1g",
        startup_timeout_s: float = 120.0,
        overrides: Mapping[str, str] | None = None,
    ) -> None:
        self._owns_dir = data_dir is None
        # Absolute: the JVM runs with the data dir as its cwd, and log.dirs must not be read relative to it.
        self.data_dir = (
            Path(tempfile.mkdtemp(prefix="payments-kafka-")) if data_dir is None else data_dir.resolve()
        )
        self.partitions = partitions
        self.startup_timeout_s = startup_timeout_s
        self._cache_dir = cache_dir
        self._heap = heap
        self._overrides = dict(overrides or {})
        self.ports = _read_ports(self.config_path) or BrokerPorts.pick()
        self._child: ChildProcess | None = None
        self._has_run = False

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.ports.client}"

    @property
    def config_path(self) -> Path:
        return self.data_dir / "server.properties"

    @property
    def log_path(self) -> Path:
        return self.data_dir / "broker.log"

    @property
    def pid(self) -> int | None:
        return self._child.pid if self._child is not None and self._child.alive() else None

    def __enter__(self) -> KafkaBroker:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def start(self) -> None:
        """Format the data dir if new, launch the JVM and return once clients and transactions work."""
        if self._child is not None and self._child.alive():
            return
        java = require_java()
        libs = fetch_kafka_jars(self._cache_dir)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        for attempt in range(3):
            self._write_config()
            if not (self.data_dir / "kraft-logs" / "meta.properties").exists():
                self._format(java, libs)
            started = time.monotonic()
            self._launch(java, libs)
            try:
                self._wait_ready(started + self.startup_timeout_s)
            except DevstackError:
                lost_race = self._child is not None and not self._child.alive()
                lost_race = lost_race and "Address already in use" in self._tail()
                self._terminate(hard=True)
                # Another process took a port between free_port() and the JVM's bind. New ports are fine
                # until a start has succeeded (the single voter accepts a moved controller endpoint); after
                # that, clients hold this bootstrap address, so a restart must keep it or fail.
                if not lost_race or self._has_run or attempt == 2:
                    raise
                self.ports = BrokerPorts.pick()
                continue
            self._has_run = True
            _LOG.info("Kafka ready at %s in %.1f s", self.bootstrap, time.monotonic() - started)
            return

    def stop(self, timeout_s: float = 30.0) -> None:
        """SIGTERM (Kafka shuts down cleanly), SIGKILL after ``timeout_s``; drop a temporary data dir."""
        self._terminate(hard=False, timeout_s=timeout_s)
        if self._owns_dir:
            shutil.rmtree(self.data_dir, ignore_errors=True)

    def restart(self, *, hard: bool = False) -> None:
        """Stop and start again on the same data dir and ports. ``hard`` SIGKILLs first, as a crash would,
        so the broker recovers its logs on the way up."""
        self.halt(hard=hard)
        self.start()

    def halt(self, *, hard: bool = False) -> None:
        """Stop the process but keep its data dir and ports, for an outage that :meth:`start` ends."""
        self._terminate(hard=hard)

    def _terminate(self, *, hard: bool, timeout_s: float = 30.0) -> None:
        if self._child is None:
            return
        if hard:
            self._child.kill()
        else:
            self._child.stop(timeout_s)
        self._child = None

    def _write_config(self) -> None:
        properties = server_properties(self.data_dir, self.ports, self.partitions) | self._overrides
        self.config_path.write_text(_render(properties), encoding="utf-8")
        log4j = (resources.files("payments.devstack") / "log4j2.properties").read_text(encoding="utf-8")
        (self.data_dir / "log4j2.properties").write_text(log4j, encoding="utf-8")

    def _java_argv(self, java: str, libs: Path, *jvm: str) -> list[str]:
        log4j = f"-Dlog4j2.configurationFile={self.data_dir / 'log4j2.properties'}"
        # The JVM expands "libs/*" itself, so no shell is involved.
        return [java, *jvm, "-Djava.awt.headless=true", log4j, "-cp", f"{libs}/*"]

    def _format(self, java: str, libs: Path) -> None:
        # A one-shot tool: C1 only and the serial collector start it fastest.
        jvm = ("-Xmx256m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1")
        argv = [
            *self._java_argv(java, libs, *jvm),
            *("kafka.tools.StorageTool", "format", "--standalone"),
            *("--cluster-id", random_cluster_id(), "--config", str(self.config_path)),
        ]
        done = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise DevstackError(f"formatting {self.data_dir} failed:\n{done.stdout}{done.stderr}")

    def _launch(self, java: str, libs: Path) -> None:
        # G1 with short pauses as kafka-server-start.sh uses; full C2 because benchmarks run on this broker.
        jvm = (f"-Xmx{self._heap}", "-Xms256m", "-XX:+UseG1GC", "-XX:MaxGCPauseMillis=20")
        argv = [*self._java_argv(java, libs, *jvm, "-XX:+ExitOnOutOfMemoryError"), "kafka.Kafka"]
        self._child = ChildProcess([*argv, str(self.config_path)], self.log_path, cwd=self.data_dir)
        self._child.start()

    def _tail(self) -> str:
        return self._child.log_tail() if self._child is not None else ""

    def _check_alive(self) -> None:
        if self._child is None or not self._child.alive():
            code = self._child.returncode() if self._child is not None else None
            raise DevstackError(
                f"Kafka exited during start-up (exit {code}); {self.log_path}:\n{self._tail()}"
            )

    def _wait_ready(self, deadline: float) -> None:
        """Ready means: metadata requests answer, a transactional producer can register, and the group
        coordinator is up. Each of the last two creates an internal topic on first use, which is exactly
        the slow step a test would otherwise hit with a short timeout."""
        self._wait_for_listener(deadline)
        # librdkafka's log lines (connection refused while starting, ...) go to logging, not stderr.
        config: dict[str, Any] = {"bootstrap.servers": self.bootstrap, "logger": _PROBE_LOG}
        admin = AdminClient(config)
        self._retry_until(deadline, "list topics", lambda t: admin.list_topics(timeout=t))
        producer = Producer(config | {"transactional.id": _PROBE_ID})
        try:
            self._retry_until(deadline, "init_transactions", producer.init_transactions)
        finally:
            producer.close()
        consumer = Consumer(config | {"group.id": _PROBE_ID, "enable.auto.commit": False})
        try:
            # An offset fetch finds the group coordinator, creating __consumer_offsets on the way.
            probe = [TopicPartition(_PROBE_ID, 0)]
            self._retry_until(deadline, "find the group coordinator", lambda t: consumer.committed(probe, t))
        finally:
            consumer.close()

    def _wait_for_listener(self, deadline: float) -> None:
        # Plain TCP first: clients created before the port opens only log connection-refused noise.
        while True:
            self._check_alive()
            try:
                with socket.create_connection(("127.0.0.1", self.ports.client), timeout=1.0):
                    return
            except OSError:
                if time.monotonic() > deadline:
                    raise DevstackError(
                        f"Kafka did not open port {self.ports.client}:\n{self._tail()}"
                    ) from None
                time.sleep(0.1)

    def _retry_until(self, deadline: float, what: str, call: Callable[[float], object]) -> None:
        while True:
            self._check_alive()
            remaining = deadline - time.monotonic()
            try:
                call(max(1.0, min(10.0, remaining)))
                return
            except KafkaException as exc:
                if remaining <= 0:
                    raise DevstackError(f"Kafka not ready, could not {what}: {exc}\n{self._tail()}") from exc
                time.sleep(0.2)
