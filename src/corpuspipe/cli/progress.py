"""The release's progress display: a start-up bar until the flow's first step reports, then one
bar per step (imported when a build starts: the other commands never load ``rich.progress``)."""

from __future__ import annotations

from rich.console import Console
from rich.progress import BarColumn, Progress, ProgressColumn, TextColumn, TimeElapsedColumn
from rich.table import Column
from rich.text import Text


class AmountColumn(ProgressColumn):
    """Passes: raw MB done/total, MB/s and ETA, documents so far; other steps: done/total."""

    def render(self, task) -> Text:
        if task.fields.get("unit") == "bytes":
            mb, tot = task.completed / 1e6, task.total / 1e6
            rate = f"{task.speed / 1e6:.1f} MB/s" if task.speed else "…"
            eta = f"ETA {int(task.time_remaining)}s" if task.time_remaining is not None and not task.finished else ""
            return Text(" ".join(x for x in (f"{mb:,.1f}/{tot:,.1f} MB", rate, eta, task.fields.get("docs", "")) if x))
        return Text(f"{int(task.completed)}/{int(task.total)}")


def progress_display(console: Console) -> Progress:
    return Progress(
        # fixed, non-wrapping columns: on an 80-column or non-terminal output the long pass labels
        # squeezed the amounts into one word per line
        TextColumn("{task.description}", table_column=Column(width=30, no_wrap=True, overflow="ellipsis")),
        *([BarColumn(bar_width=10)] if console.width >= 100 else []),
        AmountColumn(table_column=Column(no_wrap=True)), TimeElapsedColumn(table_column=Column(no_wrap=True)),
        console=console
    )


class StepBars:
    """The flow's progress callback: one bar per step; ``started`` once the first step reported
    (Prefect is up, so a refused connection is no longer retried)."""

    def __init__(self, progress: Progress) -> None:
        self.progress = progress
        self.bars: dict[str, int] = {"start-up": progress.add_task("start-up (Prefect server)", total=1)}
        self.started = False

    def __call__(self, stage: str, done: int, total: int, unit: str = "tasks", documents: int | None = None) -> None:
        self.started = True
        progress, bars = self.progress, self.bars
        if not progress.tasks[bars["start-up"]].finished:
            progress.update(bars["start-up"], completed=1)  # the first step of the flow: Prefect is up
        if stage not in bars:
            bars[stage] = progress.add_task(stage, total=max(total, 1), unit=unit, docs="")
        docs = f"{documents:,} docs" if documents is not None else ""
        progress.update(bars[stage], completed=done if total else 1, docs=docs)
