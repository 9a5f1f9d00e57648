"""The one exception tree of digest.

Every error carries the offending value (a source, a setting, a query) so
that the CLI can print one line naming what went wrong and where.  Foreign
exceptions are wrapped where they enter (``raise SourceError(...) from e``).
"""

from __future__ import annotations


class DigestError(Exception):
    """Base class of every error digest raises on purpose."""

    #: A short suggestion the CLI prints under the message, if any.
    hint: str | None = None

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        if hint is not None:
            self.hint = hint

    @property
    def message(self) -> str:
        return str(self.args[0])


class ConfigError(DigestError):
    """One or more settings are invalid; ``problems`` holds one line each."""

    hint = "run 'digest config check' to see every problem"

    def __init__(self, problems: list[str]) -> None:
        self.problems = list(problems)
        super().__init__("; ".join(self.problems) if self.problems else "invalid configuration")


class SourceError(DigestError):
    """A source could not be read or parsed."""

    def __init__(self, source: str, reason: str) -> None:
        from digest.text import printable

        # A server's words reach terminals, logs and the database: one printable line.
        self.source = source
        self.reason = printable(reason, 500)
        super().__init__(f"{source}: {self.reason}")


class StorageError(DigestError):
    """The database could not be opened, migrated or written."""

    def __init__(
        self, url: str, reason: str, *, hint: str | None = None, transient: bool = True
    ) -> None:
        self.url = url
        self.reason = reason
        #: Whether trying again later may work (the database is down or busy), rather
        #: than the data itself being refused.
        self.transient = transient
        super().__init__(f"database {url}: {reason}", hint=hint)
