"""The topics a Faust app needs of its own are known before it starts, so they exist before its first rebalance."""

from paystream.settings import get_settings
from streams.app import internal_topic_specs


def test_the_analytics_app_declares_its_changelogs_and_its_by_user_topic():
    import tables.analytics.agents

    settings = get_settings()
    specs = {spec.name: spec for spec in internal_topic_specs(tables.analytics.agents.app)}
    prefix = settings.analytics_id
    assert set(specs) == {f"{prefix}-{name}-changelog" for name in ("windows-minute", "windows-hour",
                                                                    "windows-rolling", "groups", "versions",
                                                                    "users")} | {f"{prefix}-by-user"}
    assert {spec.partitions for spec in specs.values()} == {settings.payment_topic_partitions}
    minute = specs[f"{prefix}-windows-minute-changelog"].config
    assert minute == {"cleanup.policy": "compact,delete",
                      "retention.ms": str(settings.analytics_minute_retention_s * 1000)}
    assert specs[f"{prefix}-users-changelog"].config == {"cleanup.policy": "compact"}
