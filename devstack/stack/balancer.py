"""HAProxy (Debian's `haproxy`) in front of the ingress processes: the public address, HTTP and HTTPS.

It owns `ingress_port` (and `balancer_https_port` with a development certificate made once) and
spreads requests over the ingress instances, each on a port of its own, checking each one's
/health. A request is sent again to another instance only when the connection to the first failed
before anything was sent (HAProxy's default `retry-on conn-failure`, with `option redispatch`):
a payment is never sent twice by the balancer. Instances are added and removed at runtime over
HAProxy's runtime API on a unix socket (`paystream scale`); the configuration file is rewritten
each time too, so a restarted HAProxy comes back with the same servers.

Two backends, bulkheads over the same ingress servers (docs/admission.md): payment calls (POST
startPayment / postPayment) go to `ingress_writes`, everything else to `ingress_reads`, each with
its own connections per server and its own queue. A payment call holds its connection for the
provider's whole round trip (up to seconds) while costing almost no CPU; on one backend, such calls
filled every slot and the 1 ms reads waited behind them until HAProxy shed them. Apart, a read
waits only for reads. Every runtime change (add, drain, remove) applies to both backends.
"""

from __future__ import annotations

import datetime
import ipaddress
import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

from devstack.stack import haproxy_errors, instances
from devstack.stack.base import Service
from devstack.stack.errors import StackError

#: Reads (every request but a payment call) and payment calls: the two bulkheads.
READS = "ingress_reads"
WRITES = "ingress_writes"
BACKENDS = (READS, WRITES)
#: The payment calls' paths (the API's and the design's aliases), all POST: ingress/routes.py's
#: startPayment and postPayment, which the ingress's own write bound counts (ingress/middleware.py WRITES).
PAYMENT_PATHS = ("/v1/startPayment", "/startPayment", "/v1/postPayment", "/postPayment")
#: `show stat` fields that count (summed over both backends for one server); the rest are the read row's.
SUMMED_FIELDS = ("scur", "qcur", "stot", "hrsp_1xx", "hrsp_2xx", "hrsp_3xx", "hrsp_4xx", "hrsp_5xx", "hrsp_other")


class Balancer(Service):
    name = "balancer"

    @property
    def address(self) -> str:
        return f"http://{self.settings.ingress_host}:{self.settings.ingress_port}"

    @property
    def https_address(self) -> str:
        return f"https://{self.settings.ingress_host}:{self.settings.balancer_https_port}"

    @property
    def stats_address(self) -> str:
        return f"http://{self.settings.ingress_host}:{self.settings.balancer_stats_port}/"

    @property
    def config_path(self) -> Path:
        return self.dir / "haproxy.cfg"

    @property
    def socket_path(self) -> Path:
        return self.dir / "admin.sock"

    @property
    def certificate_path(self) -> Path:
        """The development certificate and its key, one PEM file as HAProxy wants it."""
        return self.dir / "dev-cert.pem"

    @property
    def errors_dir(self) -> Path:
        return self.dir / "errors"

    @property
    def marker(self) -> str:
        return str(self.config_path.resolve())

    def ports(self) -> list[tuple[str, int]]:
        s = self.settings
        return [(s.ingress_host, p) for p in (s.ingress_port, s.balancer_https_port, s.balancer_stats_port)]

    def install(self) -> None:
        if shutil.which("haproxy"):
            return
        if os.geteuid() != 0 or not shutil.which("apt-get"):
            raise StackError("`haproxy` was not found on PATH: install it (Debian: apt-get install haproxy)")
        for cmd in (["apt-get", "update", "-qq"],
                    ["apt-get", "install", "-y", "-qq", "--no-install-recommends", "haproxy"]):
            result = subprocess.run(cmd, capture_output=True, text=True,
                                    env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"})
            if result.returncode != 0:
                raise StackError(f"`{' '.join(cmd)}` failed:\n{result.stderr[-2000:]}")

    def prepare(self) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        if not self.certificate_path.exists():
            self.certificate_path.write_bytes(development_certificate(self.settings.ingress_host))
            self.certificate_path.chmod(0o600)
        self.write_config()

    def write_config(self) -> None:
        self.write_error_pages()
        self.config_path.write_text(self.render(instances.ingress_ports(self.settings)))

    def write_error_pages(self) -> None:
        self.errors_dir.mkdir(parents=True, exist_ok=True)
        for status in haproxy_errors.PAGES:
            (self.errors_dir / haproxy_errors.file_name(status)).write_bytes(haproxy_errors.page(status))

    def maxconn(self, backend: str) -> int:
        s = self.settings
        return s.balancer_read_maxconn if backend == READS else s.balancer_write_server_maxconn

    def server_line(self, backend: str, name: str, port: int) -> str:
        """A server's definition in `backend`, the same in the file and in a runtime `add server`."""
        s = self.settings
        return (f"{backend}/{name} {s.ingress_host}:{port} check inter {s.balancer_check_interval_ms} "
                f"fall 2 rise 2 maxconn {self.maxconn(backend)}")

    def render(self, servers: dict[str, int]) -> str:
        s = self.settings
        host = s.ingress_host

        def server_lines(backend: str) -> str:
            return "\n".join(f"    server {self.server_line(backend, n, p).split('/', 1)[1]}" for n, p in servers.items())

        error_lines = "\n".join(f"    errorfile {status} {(self.errors_dir / haproxy_errors.file_name(status)).resolve()}"
                                for status in haproxy_errors.PAGES)
        return f"""# Written by `paystream stack up` / `paystream scale` (devstack/stack/balancer.py); edits are lost.
global
    maxconn 4096
    # One thread carries thousands of requests a second; on a machine short of cores a second one
    # spent its time on the queue's lock (measured: 29 % of a core beside payments, 8 % with one).
    nbthread 1
    stats socket {self.socket_path.resolve()} mode 600 level admin
    log stdout format raw local0 info
    ssl-default-bind-options ssl-min-ver TLSv1.2

defaults
    mode http
    log global
    option httplog
    # Only errors and retried or redispatched requests reach the log.
    option dontlog-normal
    timeout connect 2s
    timeout client {s.balancer_timeout_s}s
    timeout server {s.balancer_timeout_s}s
    timeout http-keep-alive {s.balancer_timeout_s}s
    timeout check 2s
    # Past each ingress's maxconn a request waits here, and past this wait it is shed with a 503 that
    # costs HAProxy microseconds instead of costing the busy ingress a Python request.
    timeout queue {s.balancer_queue_timeout_ms}ms
    # Sent again (to another instance) only when the connection failed before anything was sent.
    retries 2
    retry-on conn-failure
    option redispatch 1
    # HAProxy's own answers in the API's JSON error shape (devstack/stack/haproxy_errors.py).
{error_lines}

frontend public
    bind {host}:{s.ingress_port}
    bind {host}:{s.balancer_https_port} ssl crt {self.certificate_path.resolve()} alpn http/1.1
    http-request set-header X-Forwarded-Proto https if {{ ssl_fc }}
    http-request set-header X-Forwarded-Proto http if !{{ ssl_fc }}
    option forwardfor
    # Bulkheads (docs/admission.md): a payment call waits on its provider for up to seconds, so it has
    # connections and a queue of its own; a read never waits behind one.
    acl payment_call method POST
    acl payment_call_path path {" ".join(PAYMENT_PATHS)}
    use_backend {WRITES} if payment_call payment_call_path
    default_backend {READS}

frontend stats
    bind {host}:{s.balancer_stats_port}
    http-request use-service prometheus-exporter if {{ path /metrics }}
    stats enable
    stats uri /
    stats refresh 5s

# Reads: a cache hit costs an ingress about 1 ms, so few at once per ingress keep its event loop's
# wait short; a burst waits here (timeout queue above) and past that is shed for microseconds.
backend {READS}
    balance roundrobin
    option httpchk GET /health
    http-check expect status 200
{server_lines(READS)}

# Payment calls: as many per ingress as the ingress's own bound on writes, so that bound decides
# (503 overloaded + Retry-After from the ingress, nothing done); past it, the queue is short and an
# overflow is answered the JSON 503 + Retry-After at once, not after a wait.
backend {WRITES}
    balance roundrobin
    timeout queue {s.balancer_write_queue_timeout_ms}ms
    option httpchk GET /health
    http-check expect status 200
{server_lines(WRITES)}
"""

    def command(self) -> list[str]:
        return [shutil.which("haproxy") or "haproxy", "-db", "-f", str(self.config_path.resolve())]

    def probe(self) -> str:
        servers = self.servers()
        up = sum(1 for state in servers.values() if state["status"] == "UP")
        return f"{up}/{len(servers)} ingress up; https on {self.settings.balancer_https_port}"

    # --- the runtime API ----------------------------------------------------------------
    def runtime(self, command: str) -> str:
        """One command on HAProxy's admin socket; its answer."""
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(5)
            sock.connect(str(self.socket_path.resolve()))
            sock.sendall(command.encode() + b"\n")
            chunks = []
            while chunk := sock.recv(65536):
                chunks.append(chunk)
        return b"".join(chunks).decode()

    def stats(self) -> list[dict[str, str]]:
        """Every row of `show stat` (frontends, backends, servers): its fields by name."""
        lines = self.runtime("show stat").splitlines()
        if not lines or not lines[0].startswith("# "):
            raise StackError(f"unexpected answer to `show stat`: {lines[:2]}")
        fields = lines[0][2:].split(",")
        return [dict(zip(fields, line.split(","), strict=False)) for line in lines[1:] if line]

    def backends(self) -> dict[str, dict[str, str]]:
        """The two backends' own rows (qcur: queued now, scur: at the ingress now, ...), by backend."""
        return {r["pxname"]: r for r in self.stats() if r["pxname"] in BACKENDS and r["svname"] == "BACKEND"}

    def servers(self) -> dict[str, dict[str, str]]:
        """The ingress servers: name -> their read backend's `show stat` fields, where `status` is UP
        only when UP in both backends and the counts (SUMMED_FIELDS) are both backends' together."""
        merged: dict[str, dict[str, str]] = {}
        for row in self.stats():
            if row["pxname"] not in BACKENDS or row["svname"] in ("FRONTEND", "BACKEND"):
                continue
            name = row["svname"]
            if name not in merged:
                merged[name] = dict(row)
                continue
            seen = merged[name]
            if row["pxname"] == READS:
                seen.update({k: v for k, v in row.items() if k not in SUMMED_FIELDS and k != "status"})
            for field in SUMMED_FIELDS:
                seen[field] = str(int(seen.get(field) or 0) + int(row.get(field) or 0))
            if seen["status"] == "UP":
                seen["status"] = row["status"]
        return merged

    def _expect(self, command: str, *ok: str) -> None:
        answer = self.runtime(command).strip()
        if answer and not any(word in answer for word in ok):
            raise StackError(f"HAProxy refused `{command}`: {answer}")

    def set_state(self, name: str, state: str) -> None:
        """`ready`, `drain` or `maint` for `name` in both backends."""
        for backend in BACKENDS:
            self._expect(f"set server {backend}/{name} state {state}")

    def _present(self, name: str) -> set[str]:
        """The backends `name` is a server of."""
        return {r["pxname"] for r in self.stats() if r["pxname"] in BACKENDS and r["svname"] == name}

    def add(self, name: str, port: int) -> None:
        """Put a running instance in service, in both backends: checked from now on, sent requests once healthy."""
        present = self._present(name)
        for backend in BACKENDS:
            if backend not in present:
                self._expect(f"add server {self.server_line(backend, name, port)}", "New server registered")
                self._expect(f"enable health {backend}/{name}")
        self.set_state(name, "ready")

    def wait_up(self, names: set[str], timeout_s: float) -> None:
        """Until HAProxy's checks have every one of `names` UP (in rotation) in both backends."""
        deadline = time.monotonic() + timeout_s
        while (servers := self.servers()) and not all(servers.get(n, {}).get("status") == "UP" for n in names):
            if time.monotonic() > deadline:
                raise StackError(f"HAProxy's checks do not have {sorted(names)} UP: "
                                 + ", ".join(f"{n} {r['status']}" for n, r in servers.items()))
            time.sleep(0.2)

    def drain(self, name: str, timeout_s: float) -> int:
        """No new requests for `name` (reads nor writes); wait until those it has are answered. Returns how
        many were still open when `timeout_s` ran out (0: drained). One HAProxy does not know gets no
        request: drained already (the full benchmark met one, its server deleted while its process was down)."""
        present = self._present(name)
        if not present:
            return 0
        for backend in present:
            self._expect(f"set server {backend}/{name} state drain")
        deadline = time.monotonic() + timeout_s
        while True:
            current = int(self.servers().get(name, {}).get("scur") or 0)
            if current == 0 or time.monotonic() > deadline:
                return current
            time.sleep(0.1)

    def remove(self, name: str, timeout_s: float = 10.0) -> None:
        """Take `name` out of both backends (after drain and after its process stopped)."""
        deadline = time.monotonic() + timeout_s
        for backend in self._present(name):
            self._expect(f"set server {backend}/{name} state maint")
        while present := self._present(name):
            for backend in present:
                answer = self.runtime(f"del server {backend}/{name}").strip()
                if "deleted" in answer.lower():
                    continue
                if time.monotonic() > deadline:
                    raise StackError(f"HAProxy would not delete {name} from {backend}: {answer}")
                # Idle kept-alive connections to it close once its process has gone.
                self._expect(f"shutdown sessions server {backend}/{name}")
            if self._present(name):
                time.sleep(0.2)


def development_certificate(host: str) -> bytes:
    """A self-signed certificate for localhost and `host`, with its key (PEM), valid two years."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "paystream development")])
    now = datetime.datetime.now(datetime.UTC)
    names: list[x509.GeneralName] = [x509.DNSName("localhost")]
    try:
        names.append(x509.IPAddress(ipaddress.ip_address(host)))
    except ValueError:
        names.append(x509.DNSName(host))
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=730))
            .add_extension(x509.SubjectAlternativeName(names), critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    return cert.public_bytes(serialization.Encoding.PEM) + key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
