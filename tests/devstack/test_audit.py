"""`make audit` fails on a known vulnerability, and never passes an unaudited package off as clean."""

from __future__ import annotations

from devstack.audit import verdict

CLEAN = {"name": "yarl", "version": "1.25.1", "vulns": []}
VULNERABLE = {"name": "aiohttp", "version": "3.10.0", "vulns": [
    {"id": "GHSA-9548-qrrj-x5pj", "fix_versions": ["3.13.3"], "aliases": ["CVE-2025-69223"], "description": "…"}]}
UNREACHED = {"name": "redis", "version": "8.1.0", "skip_reason": "Dependency not found on PyPI and could not be audited"}
OURS = {"name": "paystream", "version": "0.1.0", "skip_reason": "distribution marked as editable"}


def test_a_known_vulnerability_fails_the_run_and_names_the_fix():
    status, lines = verdict({"dependencies": [CLEAN, VULNERABLE, OURS]})
    assert status == 1
    assert lines[0] == "VULNERABLE aiohttp 3.10.0: GHSA-9548-qrrj-x5pj (fixed in 3.13.3)"
    assert lines[-1] == "pip-audit: 2 of 2 installed packages audited, 1 vulnerable"


def test_a_clean_run_passes():
    assert verdict({"dependencies": [CLEAN, OURS]}) == (0, ["pip-audit: 1 of 1 installed packages audited, "
                                                           "0 vulnerable"])


def test_packages_that_could_not_be_audited_are_counted_and_fail_a_strict_run():
    status, lines = verdict({"dependencies": [CLEAN, UNREACHED]})
    assert status == 0 and "1 of 2 installed packages audited" in lines[0] and lines[1].startswith("WARNING: 1")
    assert verdict({"dependencies": [CLEAN, UNREACHED]}, strict=True)[0] == 1
