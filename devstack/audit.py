"""`make audit`: pip-audit over every installed package; the run fails on any known vulnerability.

pip-audit asks PyPI's vulnerability data for each installed version. Where that data
cannot be reached, pip-audit skips the package ("could not be audited") rather than
failing; this says so loudly, with the count, so a run that audited nothing is never
mistaken for a clean one. PAYSTREAM_AUDIT_STRICT=1 makes such a run fail too.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys


def verdict(report: dict, strict: bool = False) -> tuple[int, list[str]]:
    """(exit status, lines to print) for pip-audit's JSON report; our own editable packages are not PyPI's."""
    deps = [d for d in report.get("dependencies", []) if "editable" not in (d.get("skip_reason") or "")]
    vulnerable = [d for d in deps if d.get("vulns")]
    skipped = [d for d in deps if d.get("skip_reason")]
    lines = [f"VULNERABLE {dep['name']} {dep['version']}: {vuln['id']} (fixed in "
             f"{', '.join(vuln.get('fix_versions') or []) or 'no release yet'})"
             for dep in vulnerable for vuln in dep["vulns"]]
    lines.append(f"pip-audit: {len(deps) - len(skipped)} of {len(deps)} installed packages audited, "
                 f"{len(vulnerable)} vulnerable")
    if skipped:
        lines.append(f"WARNING: {len(skipped)} packages could not be audited (e.g. {skipped[0]['skip_reason']}): "
                     "the vulnerability data did not answer from this machine, so they are unchecked")
    return (1 if vulnerable or (skipped and strict) else 0), lines


def main() -> int:
    result = subprocess.run(
        [sys.executable, "-m", "pip_audit", "--format", "json", "--skip-editable", "--progress-spinner", "off"],
        capture_output=True, text=True)
    try:
        report = json.loads(result.stdout)
    except json.JSONDecodeError:
        print(f"pip-audit failed (exit {result.returncode}):\n{result.stderr[-3000:]}", file=sys.stderr)
        return 1
    status, lines = verdict(report, strict=os.environ.get("PAYSTREAM_AUDIT_STRICT") == "1")
    print("\n".join(lines))
    return status


if __name__ == "__main__":
    sys.exit(main())
