"""What a long command shows while it works: a live display on a terminal, plain lines in a log.

A run tells its watcher each step as it starts (``step``), how many items the
step has when it knows (``expect``: the files to ingest), each item done
(``advance``) and any other detail (calling it with a message: a linkage
stage). ``RunRequest.progress`` takes a ``RunProgress`` or any callable taking
a message; ``announce_step`` speaks to either. Messages name files, steps and
stages, never a data value.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from types import TracebackType
from typing import Any

from rich.console import Console
from rich.markup import escape

Progress = Callable[[str], None]


class RunProgress:
    """A watcher that ignores everything: the base of the two displays."""

    def step(self, name: str) -> None:
        """A step starts (the one before it is done)."""

    def expect(self, total: int) -> None:
        """The current step has ``total`` items (files to ingest, stages to generate)."""

    def advance(self, detail: str = "", completed: int | None = None) -> None:
        """An item of the current step is done (or ``completed`` of them are)."""

    def __call__(self, detail: str) -> None:
        """A detail of the current step (shown on a terminal, not logged)."""

    def close(self) -> None:
        """The command is done: finish the last step."""

    def __enter__(self) -> RunProgress:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()


def announce_step(progress: Progress | None, name: str) -> None:
    """Tell the watcher a step starts: a ``RunProgress`` by ``step``, a callable in a line."""
    if isinstance(progress, RunProgress):
        progress.step(name)
    elif progress is not None:
        progress(f"step {name}")


class LineProgress(RunProgress):
    """One line per step, with the time: what a CI log or a cron mail should hold."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self.steps = 0

    def step(self, name: str) -> None:
        self.steps += 1
        self.console.print(f"{time.strftime('%H:%M:%S')} step {self.steps}: {escape(name)}",
                           highlight=False, soft_wrap=True)


class TerminalProgress(RunProgress):
    """A live rich display: one row per step, a bar where the step knows its items."""

    def __init__(self, console: Console) -> None:
        from rich.progress import (
            BarColumn,
            Progress,
            ProgressColumn,
            SpinnerColumn,
            Task,
            TextColumn,
            TimeElapsedColumn,
        )
        from rich.text import Text

        class CountColumn(ProgressColumn):
            """``12/222`` when the step knows its items, nothing otherwise."""

            def render(self, task: Task) -> Text:
                items = task.fields.get("items")
                if items is None:
                    return Text("")
                return Text(f"{min(int(task.completed), items)}/{items}")

        self.display = Progress(
            SpinnerColumn(finished_text="[green]done[/]"),
            TextColumn("{task.description}"),
            BarColumn(bar_width=24),
            CountColumn(),
            TimeElapsedColumn(),
            TextColumn("[dim]{task.fields[detail]}"),
            console=console, transient=False, redirect_stdout=False, redirect_stderr=False)
        self.current: Any = None
        self.started = False

    def _finish(self) -> None:
        if self.current is not None:
            task = self.display.tasks[-1]
            total = task.total or 1
            self.display.update(self.current, total=total, completed=total, detail="")
            self.current = None

    def step(self, name: str) -> None:
        if not self.started:
            self.display.start()
            self.started = True
        self._finish()
        self.current = self.display.add_task(escape(name), total=None, detail="", items=None)

    def expect(self, total: int) -> None:
        # one unit more than the items: a step is done when it ends, not at its last item
        # (ingest checks expectations after the last file)
        if self.current is not None:
            self.display.update(self.current, total=total + 1, items=total)

    def advance(self, detail: str = "", completed: int | None = None) -> None:
        if self.current is None:
            return
        if completed is None:
            self.display.advance(self.current)
        else:
            self.display.update(self.current, completed=completed)
        self.display.update(self.current, detail=escape(detail))

    def __call__(self, detail: str) -> None:
        if self.current is not None:
            self.display.update(self.current, detail=escape(detail))

    def close(self) -> None:
        if self.started:
            self._finish()
            self.display.stop()
            self.started = False


def for_console(console: Console) -> RunProgress:
    """The live display on a terminal, plain lines otherwise (a pipe, a log file, CI)."""
    return TerminalProgress(console) if console.is_terminal else LineProgress(console)
