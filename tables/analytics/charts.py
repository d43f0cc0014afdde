"""The status page's windowed charts, from the analytics' per-minute status query (no I/O here)."""

from __future__ import annotations

from datetime import UTC, datetime

#: The states charted per minute, in legend order.
CHARTED_STATES = ("started", "receipted", "declined", "failed")
#: The query the monitor asks an analytics process (GET /analytics/windows/ with the internal token).
QUERY = {"view": "status", "bucket": "1m", "since": "60m", "by": "currency"}


def minute_series(rows: list[dict], start: str, end: str) -> dict:
    """{"t": minute starts, "by_status": {state: counts}, "volume": {currency: decimal strings}} over [start, end).

    Every minute of the range has a value (0 when nothing happened), so lines do not skip idle minutes.
    Volumes stay exact decimal strings; the page turns them into numbers only to draw them."""
    first, stop = _epoch(start), _epoch(end)
    minutes = list(range(first, stop, 60))
    index = {m: i for i, m in enumerate(minutes)}
    by_status = {state: [0] * len(minutes) for state in CHARTED_STATES}
    volume_minor: dict[str, list[int]] = {}
    decimals: dict[tuple[str, int], str] = {}
    for row in rows:
        i = index.get(_epoch(row["bucket_start"]))
        if i is None:
            continue
        if row["status"] in by_status:
            by_status[row["status"]][i] += row["count"]
        if row["status"] == "receipted" and row.get("currency"):
            volume_minor.setdefault(row["currency"], [0] * len(minutes))[i] += row["volume_minor"]
            decimals[(row["currency"], i)] = row["volume"]
    volume = {currency: [decimals.get((currency, i), "0") if minor else "0" for i, minor in enumerate(values)]
              for currency, values in sorted(volume_minor.items())}
    return {"t": [_iso(m) for m in minutes], "by_status": by_status, "volume": volume}


def _epoch(text: str) -> int:
    return int(datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp())


def _iso(epoch: int) -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat().replace("+00:00", "Z")
