"""`paystream dlq list|replay`: the messages consumers set aside on the dead-letter topic.

`list` shows each letter (its id on the dead-letter topic, when, which consumer, the topic and key it
came from, the attempts and the error); `replay` sends the chosen ones back to their topics, once the
cause is fixed (a newer worker that reads the command, a store that accepts the document).
"""

from __future__ import annotations

import asyncio
import json
from typing import Annotated, Optional

import typer

from paystream.settings import get_settings

dlq = typer.Typer(help="Messages set aside on the dead-letter topic: list them, replay them.", no_args_is_help=True)


def _letters():
    from streams.dead_letters.topic import KafkaDeadLetters

    settings = get_settings()
    topic = KafkaDeadLetters(settings.kafka_bootstrap, settings.topics.dead_letters)
    return topic, asyncio.run(topic.all())


def _row(stored) -> dict:
    letter = stored.letter
    if letter is None:
        return {"id": stored.id, "error": "not a dead letter (unreadable)"}
    return {"id": stored.id, "at": letter.at, "component": letter.component, "topic": letter.topic,
            "partition": letter.partition, "offset": letter.offset, "key": letter.key,
            "attempts": letter.attempts, "error": letter.error, "correlation_id": letter.headers.get("correlation_id"),
            "replayed_from": letter.headers.get("replayed_from")}


@dlq.command("list")
def list_letters(
    topic: Annotated[Optional[str], typer.Option(help="Only letters from this topic.")] = None,
    component: Annotated[Optional[str], typer.Option(help="Only letters set aside by this consumer.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Every letter, oldest first."""
    _, letters = _letters()
    rows = [_row(s) for s in letters
            if (topic is None or (s.letter and s.letter.topic == topic))
            and (component is None or (s.letter and s.letter.component == component))]
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
        return
    from rich.console import Console
    from rich.table import Table

    table = Table("id", "at", "component", "from", "key", "attempts", "error")
    for r in rows:
        table.add_row(r["id"], r.get("at", ""), r.get("component", ""),
                      f"{r.get('topic', '')}/{r.get('partition', '')}:{r.get('offset', '')}", r.get("key") or "",
                      str(r.get("attempts", "")), r["error"])
    Console().print(table)
    typer.echo(f"{len(rows)} letter(s)")


@dlq.command()
def replay(
    ids: Annotated[Optional[list[str]], typer.Argument(help="Letters to replay, by id (`dlq list`: partition:offset).")] = None,
    replay_all: Annotated[bool, typer.Option("--all", help="Replay every letter (of --topic, if given).")] = False,
    topic: Annotated[Optional[str], typer.Option(help="With --all: only letters from this topic.")] = None,
) -> None:
    """Send letters' original messages back to their topics (consumers handle a repeat as a redelivery)."""
    if not ids and not replay_all:
        raise typer.BadParameter("name letters by id, or give --all")
    dead_letters, letters = _letters()
    by_id = {s.id: s for s in letters}
    if replay_all:
        chosen = [s for s in letters if s.letter and (topic is None or s.letter.topic == topic)]
    else:
        unknown = [i for i in ids if i not in by_id]
        if unknown:
            typer.echo(f"no such letter: {', '.join(unknown)}", err=True)
            raise typer.Exit(1)
        chosen = [by_id[i] for i in ids]
    sent = asyncio.run(dead_letters.replay(chosen))
    typer.echo(json.dumps({"replayed": sent, "ids": [s.id for s in chosen if s.letter]}))


def register(app: typer.Typer) -> None:
    app.add_typer(dlq, name="dlq")
