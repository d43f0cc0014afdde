"""Apache Kafka 4.x in KRaft mode: one process that is both broker and controller."""

from __future__ import annotations

import base64
import subprocess
import uuid
from importlib import resources

from devstack.stack.base import Service, require_tool
from devstack.stack.errors import StackError

LOG4J2 = """\
status = warn
appender.out.type = Console
appender.out.name = STDOUT
appender.out.layout.type = PatternLayout
appender.out.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = info
rootLogger.appenderRef.out.ref = STDOUT
logger.kafka.name = kafka
logger.kafka.level = warn
logger.state.name = state.change.logger
logger.state.level = warn
"""


class KafkaBroker(Service):
    name = "kafka"
    behind_reads = True  # only payments go through Kafka; a read never waits on it

    @property
    def libs(self):
        return self.settings.tools_path / f"kafka-{self.settings.kafka_version}" / "libs"

    @property
    def config_path(self):
        return self.dir / "server.properties"

    @property
    def data_dir(self):
        return self.dir / "data"

    @property
    def address(self) -> str:
        return self.settings.kafka_bootstrap

    @property
    def marker(self) -> str:
        return str(self.config_path.resolve())

    def ports(self) -> list[tuple[str, int]]:
        host = self.settings.kafka_host
        return [(host, self.settings.kafka_port), (host, self.settings.kafka_controller_port)]

    def install(self) -> None:
        done = self.libs.parent / ".complete"
        if done.exists():
            return
        require_tool("java", "install a Java 17+ runtime (Debian: apt-get install openjdk-17-jre-headless)")
        mvn = require_tool("mvn", "install Apache Maven (Debian: apt-get install maven)")
        self.libs.mkdir(parents=True, exist_ok=True)
        pom = resources.files("devstack.stack") / "kafka" / "pom.xml"
        with resources.as_file(pom) as pom_path:
            result = subprocess.run(
                [mvn, "-q", "-B", "-f", str(pom_path), "dependency:copy-dependencies",
                 f"-Dkafka.version={self.settings.kafka_version}",
                 f"-DoutputDirectory={self.libs.resolve()}"],
                capture_output=True, text=True,
            )
        if result.returncode != 0:
            raise StackError(
                f"fetching Kafka {self.settings.kafka_version} jars with Maven failed:\n"
                f"{(result.stdout + result.stderr)[-3000:]}"
            )
        done.touch()

    def prepare(self) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        host, port = self.settings.kafka_host, self.settings.kafka_port
        ctl = self.settings.kafka_controller_port
        self.config_path.write_text(
            "\n".join([
                "process.roles=broker,controller",
                "node.id=1",
                f"controller.quorum.voters=1@{host}:{ctl}",
                f"listeners=PLAINTEXT://{host}:{port},CONTROLLER://{host}:{ctl}",
                f"advertised.listeners=PLAINTEXT://{host}:{port}",
                "controller.listener.names=CONTROLLER",
                "listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
                f"log.dirs={self.data_dir.resolve()}",
                f"num.partitions={self.settings.payment_topic_partitions}",
                # A single broker: internal topics cannot have more copies.
                "offsets.topic.replication.factor=1",
                "transaction.state.log.replication.factor=1",
                "transaction.state.log.min.isr=1",
                "share.coordinator.state.topic.replication.factor=1",
                "share.coordinator.state.topic.min.isr=1",
                "group.initial.rebalance.delay.ms=0",
                # Broker and controller are one process: after a SIGKILL the new broker cannot
                # register until the controller has expired the dead one's session (9 s by
                # default), so keep that session short; heartbeats stay on loopback.
                "broker.heartbeat.interval.ms=500",
                "broker.session.timeout.ms=1500",
                "auto.create.topics.enable=false",
                "",
            ])
        )
        (self.dir / "log4j2.properties").write_text(LOG4J2)
        if not (self.data_dir / "meta.properties").exists():
            self._format_storage()

    def _format_storage(self) -> None:
        cluster_id = "-"
        while cluster_id.startswith("-"):  # StorageTool would read a leading "-" as an option
            cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).rstrip(b"=").decode()
        result = subprocess.run(
            [*self._java(), "kafka.tools.StorageTool", "format",
             "-t", cluster_id, "-c", str(self.config_path)],
            capture_output=True, text=True,
        )
        if result.returncode != 0:
            raise StackError(f"formatting Kafka storage failed:\n{result.stdout}{result.stderr}")

    def _java(self) -> list[str]:
        return [
            "java", f"-Xms{self.settings.kafka_heap}", f"-Xmx{self.settings.kafka_heap}",
            f"-Dlog4j2.configurationFile={(self.dir / 'log4j2.properties').resolve()}",
            "-cp", f"{self.libs.resolve()}/*",
        ]

    def command(self) -> list[str]:
        return [*self._java(), "kafka.Kafka", str(self.config_path.resolve())]

    def probe(self) -> str:
        from kafka import KafkaAdminClient

        # One short try per probe: kafka-python otherwise keeps one bootstrap going for 30 s with a
        # backoff that outgrows the broker's start, and `stack up` would wait for that.
        admin = KafkaAdminClient(
            bootstrap_servers=self.address, request_timeout_ms=3000, bootstrap_timeout_ms=2000,
            reconnect_backoff_max_ms=200, client_id="paystream-stack-probe",
        )
        try:
            brokers = admin.describe_cluster()["brokers"]
        finally:
            admin.close()
        return f"{len(brokers)} broker(s)"
