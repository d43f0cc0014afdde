"""A Couchbase cluster: gocaves' mock, or a real server named by COUCHBASE_CONNSTR.

gocaves is Couchbase's own cluster mock for SDK testing. Its published Go
module cannot be built as it is (a generated data file is missing and it
listens on every interface, on ports the kernel picks), so `install` copies
the module from the Go module cache into the tools folder, adds the missing
file with go:embed, confines its listeners to 127.0.0.1 on ports counted up
from a fixed base (so the cluster's address survives a restart), and builds
our small `cbcluster` program against it (see cbcluster/main.go).

A real cluster is one named by COUCHBASE_CONNSTR in the environment or in
.env outside the block `stack up` writes: then the mock is not started.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import shutil
import stat
import subprocess
import urllib.error
import urllib.request
from importlib import resources
from pathlib import Path
from urllib.parse import urlsplit

from devstack import envfile
from devstack.stack.base import Service, require_tool
from devstack.stack.errors import StackError

GOCAVES = "github.com/couchbaselabs/gocaves"

# gocaves ships this package's generated bindata file outside its module zip.
MOCKDATA_EMBED = """\
package mockdata

import "embed"

//go:embed *.json
var files embed.FS

// Asset returns one of the embedded error maps.
func Asset(name string) ([]byte, error) { return files.ReadFile(name) }
"""
LISTEN_ANY = 'fmt.Sprintf(":%d", s.listenPort)'
LISTEN_LOOPBACK = 'fmt.Sprintf("127.0.0.1:%d", NextListenPort())'
# The hook cbcluster sets to hand out fixed ports (every node opens the same listeners in the same order).
PORTS_GO = """\
package servers

// NextListenPort gives the port of the next listener; 0 lets the kernel choose.
var NextListenPort = func() int { return 0 }
"""
# gocaves' memd server never keeps its listener, so closing one (a failover) would crash.
MEMD_FORGETS_LISTENER = "\ts.localAddr = addr.String()\n"
MEMD_KEEPS_LISTENER = "\ts.localAddr = addr.String()\n\ts.listener = lsnr\n"
#: Listeners each node opens (mgmt, kv, views, query, search, analytics; each also over TLS).
LISTENERS_PER_NODE = 12


class CouchbaseCluster(Service):
    name = "couchbase"

    def __init__(self, settings) -> None:
        super().__init__(settings)
        self.connstr = os.environ.get("COUCHBASE_CONNSTR") or envfile.unmanaged(settings.env_file).get(
            "COUCHBASE_CONNSTR")
        self.external = self.connstr is not None

    @property
    def info_path(self) -> Path:
        return self.dir / "cluster.json"

    @property
    def binary(self) -> Path:
        return self.settings.tools_path / f"cbcluster-{self.settings.gocaves_version}-{_source_hash()}" / "cbcluster"

    @property
    def address(self) -> str:
        if self.external:
            return self.connstr
        try:
            return json.loads(self.info_path.read_text())["connstr"]
        except (OSError, ValueError, KeyError):
            return "(not running)"

    def ports(self) -> list[tuple[str, int]]:
        base = self.settings.couchbase_base_port
        return [("127.0.0.1", port) for port in range(base, self.control_port + 1)]

    @property
    def control_port(self) -> int:
        """The launcher's control endpoint (failover, recover): the port after the nodes' ports."""
        return self.settings.couchbase_base_port + LISTENERS_PER_NODE * self.settings.couchbase_nodes

    def exports(self) -> dict[str, str]:
        if self.external:
            return {}
        # Every node's REST address: the monitor asks whichever answers (one may be failed over).
        mgmt = ",".join(json.loads(self.info_path.read_text())["mgmt"])
        return {"COUCHBASE_CONNSTR": self.address, "PAYSTREAM_COUCHBASE_MGMT_URL": mgmt}

    @property
    def marker(self) -> str:
        return str(self.info_path.resolve())

    def install(self) -> None:
        if self.external or self.binary.exists():
            return
        go = require_tool("go", "install Go 1.21+ (https://go.dev/doc/install, or Debian: apt-get install golang)")
        build = self.settings.tools_path / "build"
        shutil.rmtree(build, ignore_errors=True)
        build.mkdir(parents=True)
        version = self.settings.gocaves_version
        module_dir = Path(json.loads(_run([go, "mod", "download", "-json", f"{GOCAVES}@{version}"], build))["Dir"])

        src = build / "gocaves"
        shutil.copytree(module_dir, src)
        for path in [src, *src.rglob("*")]:
            path.chmod(path.stat().st_mode | stat.S_IWUSR)
        (src / "mock" / "data" / "embed.go").write_text(MOCKDATA_EMBED)
        (src / "mock" / "mockimpl" / "servers" / "ports.go").write_text(PORTS_GO)
        (src / "mock" / "mockimpl" / "failover.go").write_bytes(_package_file("gocaves/failover.go"))
        _run([go, "mod", "edit", "-go=1.16"], src)  # go:embed needs 1.16
        for server in ("memdserver.go", "httpserver.go"):
            path = src / "mock" / "mockimpl" / "servers" / server
            text = path.read_text()
            if LISTEN_ANY not in text:
                raise StackError(f"gocaves {version}: {server} no longer looks as expected; pin another version")
            text = text.replace(LISTEN_ANY, LISTEN_LOOPBACK)
            if server == "memdserver.go":
                if MEMD_FORGETS_LISTENER not in text:
                    raise StackError(f"gocaves {version}: {server} no longer looks as expected; pin another version")
                text = text.replace(MEMD_FORGETS_LISTENER, MEMD_KEEPS_LISTENER)
            path.write_text(text)

        prog = build / "cbcluster"
        prog.mkdir()
        for name in ("go.mod", "main.go"):
            (prog / name).write_bytes(_package_file(name))
        _run([go, "mod", "edit", f"-require={GOCAVES}@{version}", f"-replace={GOCAVES}=../gocaves"], prog)
        _run([go, "mod", "tidy"], prog)
        self.binary.parent.mkdir(parents=True, exist_ok=True)
        _run([go, "build", "-o", str(self.binary.resolve()), "."], prog)

    def prepare(self) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        # Data is in memory only: a stale file describes a cluster that is gone.
        self.info_path.unlink(missing_ok=True)

    def command(self) -> list[str]:
        s = self.settings
        return [
            str(self.binary.resolve()), "-nodes", str(s.couchbase_nodes),
            "-replicas", str(s.couchbase_replicas), "-bucket", s.couchbase_bucket,
            "-username", s.couchbase_username, "-info", str(self.info_path.resolve()),
            "-base-port", str(s.couchbase_base_port), "-control-port", str(self.control_port),
        ]

    def env(self) -> dict[str, str]:
        return {"CBCLUSTER_PASSWORD": self.settings.couchbase_password.get_secret_value()}

    @property
    def mgmt_urls(self) -> list[str]:
        if self.external:
            return (self.settings.couchbase_mgmt_url or _default_mgmt_url(self.connstr)).split(",")
        return json.loads(self.info_path.read_text())["mgmt"]

    def probe(self) -> str:
        if not self.external and not self.info_path.exists():
            raise StackError("cluster not ready yet")
        topology = self.topology()
        return f"{topology['nodes']} nodes, bucket {self.settings.couchbase_bucket} with {topology['replicas']} replicas"

    def topology(self) -> dict:
        """The cluster's own account of its nodes and the bucket's replicas (REST API of the first
        node that answers: one may be failed over)."""
        s = self.settings
        error: Exception | None = None
        for url in self.mgmt_urls:
            try:
                bucket = _get_json(f"{url}/pools/default/buckets/{s.couchbase_bucket}",
                                   s.couchbase_username, s.couchbase_password.get_secret_value())
            except OSError as exc:
                error = exc
                continue
            return {"nodes": len(bucket["nodes"]), "replicas": bucket["vBucketServerMap"]["numReplicas"]}
        raise error

    # --- failover (the local cluster only) ---------------------------------------------
    def nodes(self) -> list[dict]:
        """Each node: id, kv_port, mgmt_port, state (active | failed_over), and its number (1..N)."""
        rows = self._control("GET", "/nodes")
        return [{**row, "number": i} for i, row in enumerate(sorted(rows, key=lambda r: r["kv_port"]), 1)]

    def failover(self, node: str | None = None) -> dict:
        """Fail a node over (by number or id; default the last active one): its vbuckets' replicas
        become active and its ports close. Returns the node."""
        target = self._pick(node, "active", last=True)
        self._control("POST", f"/failover?node={target['id']}")
        return target

    def recover(self, node: str | None = None) -> list[dict]:
        """Add failed-over nodes back (one, or by default all) and rebalance."""
        targets = [self._pick(node, "failed_over")] if node else [n for n in self.nodes() if n["state"] == "failed_over"]
        for target in targets:
            self._control("POST", f"/recover?node={target['id']}")
        return targets

    def _pick(self, node: str | None, state: str, last: bool = False) -> dict:
        nodes = self.nodes()
        candidates = [n for n in nodes if n["state"] == state]
        if node is None:
            if not candidates:
                raise StackError(f"no {state.replace('_', ' ')} node")
            return candidates[-1 if last else 0]
        found = next((n for n in nodes if node in (str(n["number"]), n["id"])), None)
        if found is None:
            raise StackError(f"no node {node}; nodes: " + ", ".join(f"{n['number']} ({n['id']}, {n['state']})"
                                                                 for n in nodes))
        if found["state"] != state:
            raise StackError(f"node {node} is {found['state'].replace('_', ' ')}")
        return found

    def _control(self, method: str, path: str):
        if self.external:
            raise StackError("failover of a real Couchbase Server is its own (auto-failover, see docs/operations.md); "
                             "this command drives the local cluster only")
        try:
            url = json.loads(self.info_path.read_text())["control"]
        except (OSError, ValueError, KeyError):
            raise StackError("the local Couchbase cluster is not running (`paystream dev stack up couchbase`)") from None
        request = urllib.request.Request(url + path, method=method)
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return json.load(response)
        except urllib.error.HTTPError as exc:
            raise StackError(f"the cluster refused: {json.load(exc).get('error')}") from None


def _default_mgmt_url(connstr: str) -> str:
    host = urlsplit(connstr.split(",")[0]).hostname or "127.0.0.1"
    return f"http://{host}:8091"


def _get_json(url: str, username: str, password: str) -> dict:
    token = base64.b64encode(f"{username}:{password}".encode()).decode()
    request = urllib.request.Request(url, headers={"Authorization": f"Basic {token}"})
    with urllib.request.urlopen(request, timeout=3) as response:
        return json.load(response)


def _package_file(name: str) -> bytes:
    return (resources.files("devstack.stack") / "cbcluster" / name).read_bytes()


def _source_hash() -> str:
    digest = hashlib.sha256()
    for name in ("go.mod", "main.go", "gocaves/failover.go"):
        digest.update(_package_file(name))
    digest.update(MOCKDATA_EMBED.encode() + LISTEN_LOOPBACK.encode() + PORTS_GO.encode() + MEMD_KEEPS_LISTENER.encode())
    return digest.hexdigest()[:12]


def _run(cmd: list[str], cwd: Path) -> str:
    result = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, env={**os.environ, "GOFLAGS": "-mod=mod"})
    if result.returncode != 0:
        raise StackError(f"building the gocaves cluster failed at `{' '.join(cmd)}`:\n{result.stderr[-3000:]}")
    return result.stdout
