"""deploy/k8s, rendered with kustomize and validated offline: every manifest against the Kubernetes
schemas (kubernetes-validate ships them), the KEDA ScaledObject against KEDA's own CRD, and the
probes, ports, settings and scaling bounds against what the code really serves and reads."""

from __future__ import annotations

import subprocess

import jsonschema
import kubernetes_validate
import pytest
import yaml
from aiohttp import web

from devstack import gotools
from paystream.settings import Settings
from paystream.topics import TopicNames
from tests.conftest import ROOT, payment_call_paths

KUBERNETES = "1.31.0"
SERVES = {"ingress": "http", "worker": "web", "analytics": "web", "sinks": "web", "monitor": "http"}
PORT_SETTING = {"ingress": "PAYSTREAM_INGRESS_PORT", "worker": "PAYSTREAM_WORKER_WEB_PORT",
                "analytics": "PAYSTREAM_ANALYTICS_WEB_PORT",
                "sinks": "PAYSTREAM_SINKS_WEB_PORT", "monitor": "PAYSTREAM_MONITOR_PORT"}


@pytest.fixture(scope="module")
def manifests(tmp_path_factory) -> list[dict]:
    from devstack.settings import DevSettings

    kustomize = gotools.installed(DevSettings(), gotools.KUSTOMIZE)
    rendered = subprocess.run([str(kustomize), "build", str(ROOT / "deploy" / "k8s")], capture_output=True,
                              text=True, check=True).stdout
    return [doc for doc in yaml.safe_load_all(rendered) if doc]


def by_kind(manifests, kind: str) -> dict[str, dict]:
    return {m["metadata"]["name"]: m for m in manifests if m["kind"] == kind}


def test_every_manifest_is_valid_kubernetes(manifests):
    kinds = sorted({m["kind"] for m in manifests})
    assert kinds == ["ConfigMap", "Deployment", "HorizontalPodAutoscaler", "Ingress", "Namespace",
                     "ScaledObject", "Service"]
    for manifest in manifests:
        if manifest["kind"] != "ScaledObject":
            kubernetes_validate.validate(manifest, KUBERNETES, strict=True)


def test_the_scaled_object_fits_kedas_crd(manifests):
    crd = yaml.safe_load((gotools.module_dir(gotools.KEDA) / "config/crd/bases/keda.sh_scaledobjects.yaml").read_text())
    (version,) = [v for v in crd["spec"]["versions"] if v["name"] == "v1alpha1"]
    for scaled in by_kind(manifests, "ScaledObject").values():
        jsonschema.validate(scaled, version["schema"]["openAPIV3Schema"])


def test_settings_in_the_config_map_are_real_settings(manifests):
    (config,) = by_kind(manifests, "ConfigMap").values()
    known = {f"PAYSTREAM_{name.upper()}" for name in Settings.model_fields} | {"COUCHBASE_CONNSTR"}
    assert set(config["data"]) <= known, set(config["data"]) - known
    Settings(_env_file=None, **{k.removeprefix("PAYSTREAM_").lower(): v for k, v in config["data"].items()
                                if k != "COUCHBASE_CONNSTR"})


def _served_paths(component: str) -> set[str]:
    if component == "ingress":
        from ingress.routes import add_routes

        app = web.Application()
        add_routes(app)
        return {r.resource.canonical for r in app.router.routes()}
    if component == "monitor":
        from monitor.app import create_app

        return {r.resource.canonical for r in create_app(Settings(_env_file=None)).router.routes()}
    # The Faust apps: the worker's and the sinks' in streams/, the analytics' beside its tables.
    module = __import__("tables.analytics.agents" if component == "analytics" else f"streams.{component}",
                        fromlist=["app"])
    return {r.resource.canonical for r in module.app.web.web_app.router.routes()}


@pytest.mark.parametrize("component", list(SERVES))
def test_probes_and_ports_match_what_the_code_serves(manifests, component):
    (config,) = by_kind(manifests, "ConfigMap").values()
    (container,) = by_kind(manifests, "Deployment")[component]["spec"]["template"]["spec"]["containers"]
    assert container["args"] == [component]
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports[SERVES[component]] == int(config["data"][PORT_SETTING[component]])
    served = _served_paths(component)
    for probe in ("readinessProbe", "livenessProbe"):
        check = container[probe]["httpGet"]
        assert check["port"] == SERVES[component]
        assert check["path"] in served, f"{component} {probe} {check['path']} not in {sorted(served)}"


def test_workers_scale_on_lag_never_beyond_the_partitions(manifests):
    (config,) = by_kind(manifests, "ConfigMap").values()
    (scaled,) = by_kind(manifests, "ScaledObject").values()
    (trigger,) = scaled["spec"]["triggers"]
    defaults = Settings(_env_file=None)
    assert scaled["spec"]["scaleTargetRef"]["name"] == "worker"
    assert scaled["spec"]["maxReplicaCount"] <= int(config["data"]["PAYSTREAM_PAYMENT_TOPIC_PARTITIONS"])
    assert trigger["metadata"]["consumerGroup"] == defaults.worker_id
    assert trigger["metadata"]["topic"] == TopicNames.for_prefix(defaults.topic_prefix).commands
    assert trigger["metadata"]["bootstrapServers"] == config["data"]["PAYSTREAM_KAFKA_BOOTSTRAP"]
    (hpa,) = by_kind(manifests, "HorizontalPodAutoscaler").values()
    assert hpa["spec"]["scaleTargetRef"]["name"] in by_kind(manifests, "Deployment")


def test_the_image_installs_paystream_alone():
    dockerfile = (ROOT / "Dockerfile").read_text()
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert "devstack" in ignored and "tests" in ignored
    copied = [line.split()[1] for line in dockerfile.splitlines() if line.startswith("COPY ") and "--from" not in line]
    assert set(copied) == {"pyproject.toml", "paystream", "ingress", "streams", "tables", "connectors", "monitor"}
    assert 'ENTRYPOINT ["paystream"]' in dockerfile


def test_payment_calls_and_reads_reach_the_pods_through_bulkheads(manifests):
    """The same split as the dev stack's HAProxy (docs/admission.md): payment calls to one Service, the
    rest to another, each with the dev stack's connections per pod."""
    from devstack.settings import DevSettings

    (ingress,) = by_kind(manifests, "Ingress").values()
    (rule,) = ingress["spec"]["rules"]
    routes = {(p["path"], p["pathType"]): p["backend"]["service"]["name"] for p in rule["http"]["paths"]}
    writes = {path for (path, kind), service in routes.items() if service == "ingress-writes"}
    assert writes == payment_call_paths()
    assert all(kind == "Exact" for (path, kind) in routes if path in writes)
    assert routes[("/", "Prefix")] == "ingress-reads"
    services = by_kind(manifests, "Service")
    defaults = DevSettings(_env_file=None)
    for name, maxconn in (("ingress-reads", defaults.balancer_read_maxconn),
                          ("ingress-writes", defaults.balancer_write_server_maxconn)):
        assert services[name]["spec"]["selector"] == {"app.kubernetes.io/name": "ingress"}
        assert services[name]["metadata"]["annotations"]["haproxy.org/pod-maxconn"] == str(maxconn)
