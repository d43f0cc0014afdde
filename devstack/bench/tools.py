"""The outside load and perf tools the benchmarks drive, installed on first use."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

from devstack import gotools
from devstack.bench.core import Step
from devstack.settings import DevSettings
from devstack.stack.errors import StackError


def vegeta(settings: DevSettings) -> Path:
    """vegeta, a constant-rate HTTP load generator."""
    return gotools.installed(settings, gotools.VEGETA)


def vegeta_attack(binary: Path, targets: list[dict], rate: float, seconds: float) -> list[dict]:
    """One constant-rate vegeta attack: every result, as vegeta encodes it (code, latency ns, error)."""
    with tempfile.TemporaryDirectory() as tmp:
        targets_file = Path(tmp) / "targets.jsonl"
        targets_file.write_text("\n".join(json.dumps(t) for t in targets) + "\n")
        attack = subprocess.Popen(
            [str(binary), "attack", "-format=json", f"-targets={targets_file}", f"-rate={rate}/s",
             f"-duration={seconds}s", "-timeout=10s", "-keepalive=true", "-workers=64"],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
        )
        encoded = subprocess.run([str(binary), "encode", "-to=json"], stdin=attack.stdout,
                                 capture_output=True, text=True)
        attack.wait()
    return [json.loads(line) for line in encoded.stdout.splitlines()]


def vegeta_step(binary: Path, suite: str, target: str, targets: list[dict], rate: int, seconds: float) -> Step:
    """One constant-rate vegeta attack; latencies and errors computed from every result."""
    latencies, errors = [], 0
    for result in vegeta_attack(binary, targets, rate, seconds):
        if result["code"] == 200 and not result.get("error"):
            latencies.append(result["latency"] / 1e9)
        else:
            errors += 1
    return Step.from_latencies(suite, target, rate, seconds, latencies, errors)


def redis_benchmark(host: str, port: int, requests: int) -> dict:
    """redis-benchmark GET: requests per second and its latency percentiles (ms)."""
    tool = shutil.which("redis-benchmark") or "redis-benchmark"
    result = subprocess.run([tool, "-h", host, "-p", str(port), "-t", "get", "-n", str(requests),
                             "-c", "50", "-q"], capture_output=True, text=True, timeout=300)
    lines = result.stdout.replace("\r", "\n").splitlines()
    line = next((ln for ln in reversed(lines) if ln.startswith("GET:") and "per second" in ln), "")
    rps = re.search(r"([\d.]+) requests per second", line)
    p50 = re.search(r"p50=([\d.]+)", line)
    return {"requests": requests, "rps": float(rps.group(1)) if rps else None,
            "p50_ms": float(p50.group(1)) if p50 else None, "raw": line.strip() or result.stderr.strip()}


def _kafka_java(settings: DevSettings) -> list[str]:
    libs = (settings.tools_path / f"kafka-{settings.kafka_version}" / "libs").resolve()
    return ["java", "-Xmx512m", "-cp", f"{libs}/*"]


def kafka_producer_perf(settings: DevSettings, topic: str, records: int, size: int = 500,
                        throughput: int = -1) -> dict:
    """Apache Kafka's own producer perf test, acks=all; -1 is as fast as it can go."""
    result = subprocess.run([
        *_kafka_java(settings), "org.apache.kafka.tools.ProducerPerformance", "--topic", topic,
        "--num-records", str(records), "--record-size", str(size), "--throughput", str(throughput),
        "--producer-props", f"bootstrap.servers={settings.kafka_bootstrap}", "acks=all",
    ], capture_output=True, text=True, timeout=600)
    summary = [ln for ln in result.stdout.splitlines() if "records sent" in ln][-1:]
    if not summary:
        raise StackError(f"producer perf test failed:\n{result.stdout[-1500:]}{result.stderr[-1500:]}")
    line = summary[0]

    def grab(pattern: str) -> float | None:
        m = re.search(pattern, line)
        return float(m.group(1)) if m else None

    return {"records": records, "record_bytes": size, "offered_rps": throughput, "rps": grab(r"([\d.]+) records/sec"),
            "mb_per_s": grab(r"\(([\d.]+) MB/sec\)"), "avg_ms": grab(r"([\d.]+) ms avg latency"),
            "p50_ms": grab(r"([\d.]+) ms 50th"), "p99_ms": grab(r"([\d.]+) ms 99th"),
            "p999_ms": grab(r"([\d.]+) ms 99.9th"), "raw": line}


def kafka_consumer_perf(settings: DevSettings, topic: str, records: int) -> dict:
    result = subprocess.run([
        *_kafka_java(settings), "org.apache.kafka.tools.ConsumerPerformance", "--bootstrap-server",
        settings.kafka_bootstrap, "--topic", topic, "--messages", str(records), "--timeout", "60000",
    ], capture_output=True, text=True, timeout=600)
    rows = [ln for ln in result.stdout.splitlines() if ln and ln[0].isdigit()]
    if not rows:
        raise StackError(f"consumer perf test failed:\n{result.stdout[-1500:]}{result.stderr[-1500:]}")
    fields = [f.strip() for f in rows[-1].split(",")]
    # start.time, end.time, data.consumed.in.MB, MB.sec, data.consumed.in.nMsg, nMsg.sec, ...
    return {"records": int(fields[4]), "mb_per_s": float(fields[3]), "rps": float(fields[5]), "raw": rows[-1]}
