"""Printing: rich tables and key/value blocks on stdout, notes on stderr, JSON as is.

Data never goes through rich's markup parser (service names like ``[public]`` or ids stay
verbatim). When stdout is not a terminal the width is unbounded, so piped output keeps
whole lines instead of wrapping at 80 columns.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterable, Sequence
from typing import Any, TextIO

from rich import box
from rich.console import Console, RenderableType
from rich.table import Table
from rich.text import Text

Cell = str | Text | RenderableType | None

UNBOUNDED_WIDTH = 10_000
# the real CLI's bullet before list items and sections
BULLET = "\u276f"


def _console(stream: TextIO) -> Console:
    width = None
    if not stream.isatty():
        columns = os.environ.get("COLUMNS", "")
        width = int(columns) if columns.isdigit() else UNBOUNDED_WIDTH
    return Console(
        file=stream, width=width, highlight=False, emoji=False, soft_wrap=False, markup=False
    )


def text(value: Any, style: str | None = None) -> Text:
    """A cell or line with no markup interpretation."""
    return Text("" if value is None else str(value), style=style or "")


class Output:
    def __init__(self, table_style: str = "compact") -> None:
        self.table_style = table_style
        self.console = _console(sys.stdout)
        self.err = _console(sys.stderr)

    def json_mode(self, enabled: bool) -> None:
        """With ``--json`` stdout carries only JSON: everything for people goes to stderr."""
        if enabled:
            self.console = self.err

    # ---- building blocks ----------------------------------------------------------------

    def new_table(self, headers: Sequence[str], *, show_header: bool = True) -> Table:
        if self.table_style == "borders":
            table = Table(box=box.ROUNDED, show_header=show_header, header_style="bold")
        else:
            table = Table(
                box=None,
                show_edge=False,
                show_header=show_header,
                header_style="bold",
                pad_edge=True,
                padding=(0, 1),
            )
        for header in headers:
            table.add_column(text(header), overflow="fold")
        return table

    def add_row(self, table: Table, cells: Iterable[Cell]) -> None:
        table.add_row(*(text(c) if c is None or isinstance(c, str) else c for c in cells))

    def table(self, headers: Sequence[str], rows: Iterable[Iterable[Cell]]) -> None:
        table = self.new_table(headers)
        for row in rows:
            self.add_row(table, row)
        self.console.print(table)

    def kv(self, pairs: Iterable[tuple[str, Cell]], *, indent: int = 0) -> None:
        """``Name:  value`` lines, values aligned."""
        grid = Table.grid(padding=(0, 2), pad_edge=False)
        grid.add_column()
        grid.add_column(overflow="fold")
        for name, value in pairs:
            grid.add_row(
                text(" " * indent + " " + name),
                text(value) if value is None or isinstance(value, str) else value,
            )
        self.console.print(grid)

    def heading(self, title: str) -> None:
        self.console.print(text(f"\n {title}:"), style="bold")
        self.console.print(text("―" * (len(title) + 2)))

    def line(self, value: Cell = "") -> None:
        self.console.print(text(value) if value is None or isinstance(value, str) else value)

    def print(self, renderable: RenderableType) -> None:
        self.console.print(renderable)

    # ---- notes on stderr ----------------------------------------------------------------

    def ok(self, message: str) -> None:
        self.console.print(Text.assemble(("[OK]: ", "green"), message))

    def note(self, message: str) -> None:
        self.err.print(text(message))

    def tip(self, message: str) -> None:
        self.err.print(Text.assemble(("  [TIP]: ", "cyan"), message))

    def warn(self, message: str) -> None:
        self.err.print(Text.assemble(("[WARNING]: ", "yellow"), message))

    # ---- machine-readable ---------------------------------------------------------------

    def json(self, value: Any) -> None:
        sys.stdout.write(json.dumps(value, indent=2, ensure_ascii=False) + "\n")
        sys.stdout.flush()

    def raw(self, data: str) -> None:
        sys.stdout.write(data)
        sys.stdout.flush()
