"""The block of the env file (.env) that `stack up` owns: the addresses it learned.

paystream reads .env like any other settings source; the dev stack writes its
learned values between two marker lines and leaves every other line alone
(API keys, a real cluster's address a developer put there).
"""

from __future__ import annotations

import io
import os
from pathlib import Path

from dotenv import dotenv_values

BEGIN = "# >>> written by `paystream stack up`: the local stack's addresses (edits here are replaced)"
END = "# <<< paystream stack"


def _split(path: Path) -> tuple[list[str], list[str]]:
    """(the lines outside the block, the lines inside it)."""
    try:
        lines = path.read_text().splitlines()
    except FileNotFoundError:
        return [], []
    outside, inside, within = [], [], False
    for line in lines:
        if line == BEGIN:
            within = True
        elif line == END:
            within = False
        elif within:
            inside.append(line)
        else:
            outside.append(line)
    return outside, inside


def _values(lines: list[str]) -> dict[str, str]:
    return {k: v for k, v in dotenv_values(stream=io.StringIO("\n".join(lines))).items() if v is not None}


def managed(path: Path) -> dict[str, str]:
    return _values(_split(path)[1])


def unmanaged(path: Path) -> dict[str, str]:
    return _values(_split(path)[0])


def write_managed(path: Path, values: dict[str, str]) -> None:
    outside, _ = _split(path)
    while outside and not outside[-1].strip():
        outside.pop()
    block = [BEGIN, *(f"{k}={v}" for k, v in sorted(values.items())), END] if values else []
    text = "\n".join([*outside, *([""] if outside and block else []), *block]) + "\n"
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    os.chmod(tmp, 0o600)
    tmp.replace(path)
