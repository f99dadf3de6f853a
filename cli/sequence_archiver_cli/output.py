"""Plain-text tables, capped lists and a progress indicator on stderr."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, TextIO

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from sequence_archiver_cli.id_input import RejectedValue

REJECTED_SHOWN = 20
_BAR_WIDTH = 30
_TTY_REDRAW_SECONDS = 0.1


def clip(value: object, width: int) -> str:
    """The text of a value, cut to `width` characters with an ellipsis."""
    text = "" if value is None else str(value)
    return text if len(text) <= width else text[: width - 1] + "…"


def table(headers: Sequence[str], rows: Sequence[Sequence[object]], *, indent: str = "") -> str:
    """Columns padded to their widest cell; columns holding only numbers are right-aligned."""
    cells = [["" if cell is None else str(cell) for cell in row] for row in rows]
    widths = [max([len(header)] + [len(row[i]) for row in cells]) for i, header in enumerate(headers)]
    numeric = [bool(cells) and all(row[i].isdigit() for row in cells if row[i]) for i in range(len(headers))]

    def line(values: Sequence[str]) -> str:
        padded = [
            value.rjust(width) if is_number else value.ljust(width)
            for value, width, is_number in zip(values, widths, numeric, strict=True)
        ]
        return (indent + "  ".join(padded)).rstrip()

    rule = indent + "  ".join("-" * width for width in widths)
    return "\n".join([line(headers), rule, *(line(row) for row in cells)])


def rejected_lines(rejected: Sequence[RejectedValue], *, limit: int = REJECTED_SHOWN) -> list[str]:
    """`where: value: reason` for the first `limit` rejected values, then how many more there are."""
    lines = [f"  {item.where}: {item.value}: {item.reason}" for item in rejected[:limit]]
    if len(rejected) > limit:
        lines.append(f"  … and {len(rejected) - limit} more")
    return lines


class Progress:
    """A progress bar on a terminal; elsewhere a plain line every `interval_seconds`."""

    def __init__(
        self,
        stream: TextIO,
        *,
        label: str,
        total: int | None,
        unit: str,
        enabled: bool = True,
        interval_seconds: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._stream = stream
        self._label = label
        self._total = total
        self._unit = unit
        self._enabled = enabled
        self._tty = enabled and stream.isatty()
        self._interval = _TTY_REDRAW_SECONDS if self._tty else interval_seconds
        self._clock = clock
        self._last_shown = clock()
        self._drawn = False

    def update(self, done: int, *, note: str = "") -> None:
        """Show that `done` units are done (drawn at most every interval)."""
        if not self._enabled:
            return
        now = self._clock()
        if now - self._last_shown < self._interval and not (self._tty and done == self._total):
            return
        self._last_shown = now
        if self._tty:
            self._stream.write("\r\033[K" + self._text(done, note, bar=True))
            self._drawn = True
        else:
            self._stream.write(self._text(done, note, bar=False) + "\n")
        self._stream.flush()

    def finish(self) -> None:
        """Clear the bar (the summary follows on its own lines)."""
        if self._drawn:
            self._stream.write("\r\033[K")
            self._stream.flush()
            self._drawn = False

    def _text(self, done: int, note: str, *, bar: bool) -> str:
        suffix = f"  {note}" if note else ""
        if not self._total:
            return f"{self._label}: {done} {self._unit}{suffix}"
        fraction = min(1.0, done / self._total)
        counts = f"{done}/{self._total} {self._unit} ({fraction:.0%})"
        if not bar:
            return f"{self._label}: {counts}{suffix}"
        filled = round(fraction * _BAR_WIDTH)
        return f"{self._label} [{'#' * filled}{'.' * (_BAR_WIDTH - filled)}] {counts}{suffix}"
