"""The consoles every command prints to, and the one way a command says it failed."""

from __future__ import annotations

import typer
from rich.console import Console
from rich.markup import escape

console = Console(stderr=False)
err = Console(stderr=True)


def error(message: str, code: int = 2) -> typer.Exit:
    """Print one unwrapped ``error:`` line on stderr (escaped for rich); the Exit to raise.

    Whatever the message holds (a path, a list of reasons), it is one line: a
    log keeps it whole and a script can read it.
    """
    err.print(f"[red]error:[/] {escape(' '.join(message.split()))}", soft_wrap=True,
              highlight=False)
    return typer.Exit(code)
