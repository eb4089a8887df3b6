"""The one exception type that reaches users as a single line (problem + fix)."""


class DmlbenchError(Exception):
    """A user-facing error: its message names the problem and how to fix it."""
