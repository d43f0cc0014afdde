"""The monitor scrapes only the /metrics pages its settings name, and the dev stack names every
instance `paystream scale` may start: each ingress behind the balancer is on a port of its own."""

from __future__ import annotations

from devstack.settings import DevSettings
from devstack.stack.pipeline import MonitorProcess
from monitor.app import known_metrics_urls
from paystream.settings import Settings


def test_by_default_the_ingress_worker_and_sinks_ports_are_scraped():
    s = Settings(_env_file=None, ingress_port=8080, worker_web_port=6066, sinks_web_port=6067)
    assert known_metrics_urls(s) == {"http://127.0.0.1:8080/metrics", "http://127.0.0.1:6066/metrics",
                                     "http://127.0.0.1:6067/metrics"}
    named = Settings(_env_file=None, monitor_scrape_urls=" http://10.0.0.5:8081/metrics ,http://10.0.0.6:8081/metrics")
    assert known_metrics_urls(named) == {"http://10.0.0.5:8081/metrics", "http://10.0.0.6:8081/metrics"}


def test_the_dev_stacks_monitor_may_scrape_every_instance_scale_can_start(tmp_path):
    dev = DevSettings(_env_file=None, state_dir=tmp_path / "state", env_file=tmp_path / ".env")
    env = MonitorProcess(dev).env()
    monitor = Settings(_env_file=None, monitor_scrape_urls=env["PAYSTREAM_MONITOR_SCRAPE_URLS"])
    known = known_metrics_urls(monitor)
    wanted = [dev.ingress_instance_port(n) for n in range(1, dev.ingress_max_instances + 1)]
    wanted += [dev.worker_instance_port(1), dev.worker_instance_port(2), dev.sinks_instance_port(2)]
    for port in wanted:
        assert f"http://{dev.ingress_host}:{port}/metrics" in known, port
