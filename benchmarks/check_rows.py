"""The rows of a check table: each row's work runs within its share of a section's seconds, and whatever fails or
runs late lands in that row as one line while the other rows still run (benchmarks/device_check.py)."""

import contextlib
import signal
import sys
import threading
import time
from dataclasses import dataclass, field

import train_speed as ts


class RowTimeout(Exception):
    """A row ran past its share of the section's seconds."""


@dataclass
class Row:
    """One line of the table: what it checks, on what setting, its cells by column, its errors, its result."""

    check: str
    setting: str = ""
    cells: dict[str, str] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    result: str = ""

    @property
    def ok(self) -> bool:
        return not self.errors and not self.result.startswith(("FAILED", "skipped"))


class Budget:
    """A section's seconds: a row may use what is left but half a fair share for each row still to come."""

    def __init__(self, seconds: float, rows: int):
        self.end, self.rows, self.reserve = time.monotonic() + seconds, rows, seconds / max(rows, 1) / 2

    def next_share(self) -> float:
        self.rows -= 1
        return self.end - time.monotonic() - self.reserve * self.rows


class Lazy:
    """A value built on first use; a failure is kept, so every row that needs it reports it without rebuilding."""

    def __init__(self, build):
        self.build, self.value, self.error = build, None, None

    def get(self):
        if self.error is None and self.value is None:
            try:
                self.value = self.build()
            except Exception as exc:  # a RowTimeout too: the next row must not spend its budget rebuilding
                self.error = exc
        if self.error is not None:
            raise RuntimeError(f"setup failed: {one_line(self.error)}")
        return self.value


def one_line(exc: BaseException, limit: int = 240) -> str:
    text = " ".join(f"{type(exc).__name__}: {exc}".split()).replace("|", "/")  # a "|" would split the table cell
    return text if len(text) <= limit else text[:limit - 3] + "..."


@contextlib.contextmanager
def deadline(seconds: float):
    """Raise RowTimeout here after ``seconds`` (SIGALRM, which only the main thread receives; elsewhere no limit)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def alarm(signum, frame):
        raise RowTimeout(f"over its {seconds:.1f} s share of the section's budget")
    previous = signal.signal(signal.SIGALRM, alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def run_row(row: Row, work, budget: Budget, device: Lazy) -> Row:
    """``work(row)`` within the row's share of ``budget``; any failure lands in the row, never in the caller."""
    seconds, start = budget.next_share(), time.monotonic()
    if seconds <= 0:
        row.result = "skipped: the section's budget is spent"
    else:
        try:
            with deadline(seconds):
                work(row)
        except Exception as exc:
            row.errors.append(one_line(exc))
        free(device)
        row.result = "FAILED: " + "; ".join(row.errors) if row.errors else row.result or "ok"
    cells = "".join(f"{k} {v}; " for k, v in row.cells.items())  # on stderr now, in case the table never comes
    print(f"device check: {row.check} ({time.monotonic() - start:.1f} s): {cells}{row.result}", file=sys.stderr,
          flush=True)
    return row


def free(device: Lazy) -> None:
    with contextlib.suppress(Exception):  # no device: nothing to free
        ts.release(device.get())


def measure(row: Row, column: str, mode, device: Lazy, peak_column: str | None = None):
    """One timed mode into ``row``; its error is noted and the row goes on (a timeout ends the row)."""
    try:
        rate = mode()
    except RowTimeout:
        raise
    except Exception as exc:
        row.cells[column] = "error"
        row.errors.append(f"{column}: {one_line(exc)}")
        return None
    finally:
        free(device)
    row.cells[column] = f"{rate.images_per_s:.1f}"
    if peak_column:
        row.cells[peak_column] = gib(rate.peak_bytes)
    return rate


def gib(size: int | None) -> str:
    return "-" if size is None else f"{size / 2**30:.2f}"


def table(rows: list[Row], columns: tuple[str, ...]) -> str:
    """The rows as a Markdown table: check, setting, ``columns`` (a row's cells), result."""
    lines = ["| check | setting | " + " | ".join(columns) + " | result |", "|---" * (len(columns) + 3) + "|"]
    lines += [f"| {r.check} | {r.setting} | " + " | ".join(r.cells.get(c, "") for c in columns) + f" | {r.result} |"
              for r in rows]
    return "\n".join(lines)
