"""The ``digest`` command: a thin shell that validates input, calls one function
of the library and formats its result.

Errors from digest become one line on stderr plus a hint (a traceback only
with ``-v``).  Exit codes: 0 ok, 1 some items failed, 2 configuration or
storage error.
"""

from __future__ import annotations

# Each module registers its commands on the group as it is imported.
from digest.cli import queries, readers, running, tryouts  # noqa: F401
from digest.cli.base import cli


def main(argv: list[str] | None = None) -> None:
    """Entry point of the ``digest`` console script."""
    cli.main(args=argv, prog_name="digest")


__all__ = ["cli", "main"]
