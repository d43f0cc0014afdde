"""The monitor fetches only the /metrics pages its settings name; the dev stack names every instance's."""

from __future__ import annotations

from devstack.settings import DevSettings
from devstack.stack.pipeline import MonitorProcess
from monitor.app import known_metrics_urls


def test_the_monitor_scrapes_every_port_a_dev_stack_instance_may_get_and_no_other():
    dev = DevSettings(ingress_max_instances=3, scale_max_instances=2)
    named = MonitorProcess(dev).env()["PAYSTREAM_MONITOR_SCRAPE_PORTS"]
    monitor = dev.model_copy(update={"monitor_scrape_ports": named})
    ports = {int(url.removesuffix("/metrics").rsplit(":", 1)[1]) for url in known_metrics_urls(monitor)}
    instances = {*(dev.ingress_instance_port(n) for n in (1, 2, 3)), *(dev.worker_instance_port(n) for n in (1, 2)),
                 *(dev.sinks_instance_port(n) for n in (1, 2))}
    # The ingress port too, as before: where a lone ingress listens without a balancer.
    assert ports == instances | {dev.ingress_port}
    assert dev.ingress_instance_port(4) not in ports
