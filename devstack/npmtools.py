"""npm tools of the dev stack, installed once into the tools folder from the project's own pins.

devstack/npmtools/package.json and its package-lock.json pin prism (`@stoplight/prism-cli`), the
validating proxy of the PayPal stand-in's contract test; `npm ci` installs exactly the lock into
<tools>/npm/tools-<digest of the two files>, so a change of pins installs afresh and an unchanged one
costs nothing. PayPal's own OpenAPI documents (`@paypal/paypal-rest-api-specifications`, named with
its version and integrity in package.json's `paypalDocuments`) are fetched apart with `npm pack`,
because that package also depends on PayPal's own build tools (code generators, linters) that no
test needs; the tarball is checked against the pinned integrity and only the two documents are kept.

PayPal's documents carry a few regular expressions (e-mail addresses) that JavaScript's RegExp refuses
in unicode mode; prism compiles each response schema with them, fails, and then silently validates
nothing. Those patterns (and only those) are dropped from the copy prism reads, so every other rule
of the schema is checked.
"""

from __future__ import annotations

import base64
import hashlib
import json
import shutil
import subprocess
import tarfile
import tempfile
from pathlib import Path

from devstack.settings import DevSettings
from devstack.stack.base import require_tool
from devstack.stack.errors import StackError

PINS = Path(__file__).resolve().parent / "npmtools"
#: The documents the contract test reads, by what they describe.
PAYPAL_DOCUMENTS = {"orders": "openapi/checkout_orders_v2.json", "payments": "openapi/payments_payment_v2.json"}
_REFUSED_PATTERNS = (
    "const patterns = JSON.parse(require('fs').readFileSync(0, 'utf8'));"
    "process.stdout.write(JSON.stringify(patterns.filter(p => { try { new RegExp(p, 'u'); return false; }"
    " catch (e) { return true; } })));"
)


def _run(command: list[str], cwd: Path) -> str:
    result = subprocess.run(command, cwd=cwd, capture_output=True, text=True)
    if result.returncode != 0:
        raise StackError(f"`{' '.join(command)}` failed:\n{result.stderr[-2000:]}")
    return result.stdout


def _folder(settings: DevSettings, name: str) -> Path:
    return settings.tools_path.resolve() / "npm" / name


def installed(settings: DevSettings) -> Path:
    """The folder whose node_modules hold the pinned tools (installed on first use)."""
    pins = [PINS / "package.json", PINS / "package-lock.json"]
    digest = hashlib.sha256(b"".join(p.read_bytes() for p in pins)).hexdigest()[:12]
    folder = _folder(settings, f"tools-{digest}")
    if (folder / ".installed").exists():
        return folder
    npm = require_tool("npm", "install Node.js 18+ with npm for the PayPal contract test's tools")
    folder.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=folder.parent) as scratch:
        work = Path(scratch) / "tools"
        work.mkdir()
        for pin in pins:
            shutil.copy(pin, work / pin.name)
        _run([npm, "ci", "--ignore-scripts", "--no-audit", "--no-fund"], work)
        (work / ".installed").touch()
        if not (folder / ".installed").exists():  # another install may have finished first
            shutil.rmtree(folder, ignore_errors=True)
            work.rename(folder)
    return folder


def prism(settings: DevSettings) -> Path:
    return installed(settings) / "node_modules" / ".bin" / "prism"


def _refused_patterns(schema: object) -> set[str]:
    patterns: set[str] = set()

    def walk(node: object) -> None:
        if isinstance(node, dict):
            if isinstance(node.get("pattern"), str):
                patterns.add(node["pattern"])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(schema)
    node = require_tool("node", "install Node.js 18+ for the PayPal contract test's tools")
    result = subprocess.run([node, "-e", _REFUSED_PATTERNS], input=json.dumps(sorted(patterns)),
                            capture_output=True, text=True, check=True)
    return set(json.loads(result.stdout))


def _without(node: object, refused: set[str]) -> object:
    if isinstance(node, dict):
        return {key: _without(value, refused) for key, value in node.items()
                if not (key == "pattern" and value in refused)}
    if isinstance(node, list):
        return [_without(value, refused) for value in node]
    return node


def paypal_documents(settings: DevSettings) -> dict[str, Path]:
    """PayPal's Orders v2 and Payments v2 OpenAPI documents, as prism reads them (fetched on first use)."""
    pin = json.loads((PINS / "package.json").read_text())["paypalDocuments"]
    folder = _folder(settings, f"paypal-documents-{pin['version']}")
    documents = {what: folder / Path(path).name for what, path in PAYPAL_DOCUMENTS.items()}
    if all(path.exists() for path in documents.values()):
        return documents
    npm = require_tool("npm", "install Node.js 18+ with npm to fetch PayPal's OpenAPI documents")
    folder.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=folder.parent) as scratch:
        packed = json.loads(_run([npm, "pack", f"{pin['package']}@{pin['version']}", "--json"], Path(scratch)))
        tarball = Path(scratch) / packed[0]["filename"]
        algorithm, expected = pin["integrity"].split("-", 1)
        actual = base64.b64encode(hashlib.new(algorithm, tarball.read_bytes()).digest()).decode()
        if actual != expected:
            raise StackError(f"{pin['package']}@{pin['version']}: integrity {algorithm}-{actual} is not the "
                             f"pinned {pin['integrity']}")
        work = Path(scratch) / "documents"
        work.mkdir()
        with tarfile.open(tarball) as archive:
            for what, path in PAYPAL_DOCUMENTS.items():
                member = archive.extractfile(f"package/{path}")
                if member is None:
                    raise StackError(f"{pin['package']}@{pin['version']} has no {path}")
                document = json.load(member)
                prepared = _without(document, _refused_patterns(document))
                (work / documents[what].name).write_text(json.dumps(prepared))
        shutil.rmtree(folder, ignore_errors=True)
        work.rename(folder)
    return documents
