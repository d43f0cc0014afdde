"""The settings tables in docs/ are the commands' output, and every setting is documented there."""

from pathlib import Path

import pytest
from typer.testing import CliRunner

from devstack.settings import DEV_GROUPS, DevSettings
from paystream.cli import app
from paystream.settings import GROUPS, Settings
from paystream.settings_table import missing_metadata

DOCS = Path(__file__).resolve().parents[2] / "docs"


@pytest.mark.parametrize("command, document", [
    (["settings", "--markdown"], "settings.md"),
    (["dev", "settings", "--markdown"], "dev-settings.md"),
])
def test_the_settings_table_in_docs_is_the_commands_output(command, document):
    result = CliRunner().invoke(app, command)
    assert result.exit_code == 0, result.output
    regenerate = f"docs/{document} differs from the settings: run `paystream {' '.join(command)} > docs/{document}`"
    assert (DOCS / document).read_text() == result.stdout, regenerate


def test_every_setting_has_a_description_and_a_group():
    dev_own = {name: field for name, field in DevSettings.model_fields.items() if name not in Settings.model_fields}
    assert missing_metadata(Settings.model_fields, GROUPS) == []
    assert missing_metadata(dev_own, DEV_GROUPS) == []


def test_every_setting_is_in_a_table():
    tables = (DOCS / "settings.md").read_text() + (DOCS / "dev-settings.md").read_text()
    for name in DevSettings.model_fields:
        assert f"PAYSTREAM_{name.upper()}`" in tables or name == "couchbase_connstr", name
    assert "`COUCHBASE_CONNSTR`" in tables
