"""The status page's windowed charts from a worker's per-minute status rows."""

from tables.analytics.charts import minute_series


def row(minute: str, status: str, count: int, currency: str | None = "EUR", volume: str | None = None,
        minor: int | None = None) -> dict:
    return {"bucket_start": f"2026-11-25T10:{minute}:00Z", "status": status, "currency": currency, "count": count,
            "volume": volume, "volume_minor": minor}


def test_every_minute_has_a_value_and_volumes_stay_exact():
    series = minute_series([
        row("00", "started", 2), row("00", "started", 1, "JPY"), row("02", "receipted", 1, "EUR", "0.10", 10),
        row("02", "receipted", 1, "JPY", "500", 500), row("02", "tokenized", 3), row("09", "started", 1),
    ], "2026-11-25T10:00:00Z", "2026-11-25T10:03:00Z")
    assert series["t"] == ["2026-11-25T10:00:00Z", "2026-11-25T10:01:00Z", "2026-11-25T10:02:00Z"]
    assert series["by_status"] == {"started": [3, 0, 0], "receipted": [0, 0, 2], "declined": [0, 0, 0],
                                   "failed": [0, 0, 0]}
    assert series["volume"] == {"EUR": ["0", "0", "0.10"], "JPY": ["0", "0", "500"]}
