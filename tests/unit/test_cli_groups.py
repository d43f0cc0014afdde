"""`paystream --help` lists production commands only; the dev stack's are under `paystream dev`
(and answer under their old top-level names too, hidden, so that scripts keep working)."""

import click
import typer
from typer.testing import CliRunner

from paystream.cli import app

DEV_COMMANDS = {"stack", "pipeline", "apikey", "where", "scale", "autoscale", "demo", "bench", "chaos", "settings"}
OLD_TOP_LEVEL = DEV_COMMANDS - {"apikey", "settings"}  # `apikey` and `settings` are production commands too


def listed(group: click.Group) -> set[str]:
    return {name for name, command in group.commands.items() if not command.hidden}


def help_text(*args: str) -> str:
    result = CliRunner().invoke(app, [*args, "--help"], terminal_width=200)
    assert result.exit_code == 0, result.output
    return result.stdout


def test_paystream_help_lists_no_dev_command():
    root = typer.main.get_command(app)
    assert listed(root) & OLD_TOP_LEVEL == set()
    assert {"worker", "sinks", "analytics", "ingress", "monitor", "apikey", "settings", "dev"} <= listed(root)
    shown = help_text()
    for name in OLD_TOP_LEVEL:
        assert f"│ {name} " not in shown, name


def test_paystream_dev_help_lists_the_dev_commands():
    dev = typer.main.get_command(app).commands["dev"]
    assert listed(dev) == DEV_COMMANDS
    shown = help_text("dev")
    for name in DEV_COMMANDS:
        assert f"│ {name} " in shown, name


def test_the_old_top_level_dev_commands_still_answer():
    root = typer.main.get_command(app)
    for name in OLD_TOP_LEVEL:
        assert root.commands[name].hidden, name
        assert CliRunner().invoke(app, [name, "--help"]).exit_code == 0, name


def test_paystream_apikey_without_a_subcommand_is_still_the_development_key(monkeypatch):
    import devstack.dev_key

    monkeypatch.setattr(devstack.dev_key, "dev_key_now", lambda settings: ("psk_dev_test", False))
    for args in (["dev", "apikey"], ["apikey"]):
        result = CliRunner().invoke(app, args)
        assert result.exit_code == 0, result.output
        assert result.stdout == "psk_dev_test\n", args
