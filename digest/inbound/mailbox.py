"""Poll an IMAP mailbox for mail that came back, and file each message when done.

I/O only: each message is handed to a callback that says how it went; this
module moves handled messages to ``digest-processed`` and unreadable ones
to ``digest-unreadable``, and leaves the rest (the database was down) where
they are for the next poll.
"""

from __future__ import annotations

import imaplib
import re
import ssl
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

from digest.errors import DigestError
from digest.inbound.parse import MAX_MESSAGE_BYTES

PROCESSED = "digest-processed"
UNREADABLE = "digest-unreadable"


class MailboxError(DigestError):
    """The mailbox could not be reached or read."""


@dataclass(frozen=True)
class PollReport:
    """How many messages a poll handled, found unreadable, and left for the next one."""

    handled: int = 0
    unreadable: int = 0
    left: int = 0


#: What the callback says of one message: "handled", "unreadable", "refused" (filed as
#: unreadable) or "retry".
Verdict = str


def poll(url: str, each: Callable[[bytes], Verdict], *, timeout: float = 30.0) -> PollReport:
    """Read every message in the mailbox ``url`` names and file it as ``each`` says."""
    with _session(url, timeout) as (imap, folder, where):
        try:
            return _file_all(imap, folder, each)
        except (OSError, imaplib.IMAP4.error) as e:
            raise MailboxError(f"the mailbox at {where} failed: {e}") from e


def waiting(url: str, *, timeout: float = 30.0) -> int:
    """How many messages wait in the mailbox ``url`` names (so it answers, takes the
    login and has the folder); nothing is read or moved."""
    with _session(url, timeout) as (imap, folder, where):
        try:
            status, data = imap.select(_quoted(folder), readonly=True)
        except (OSError, imaplib.IMAP4.error) as e:
            raise MailboxError(f"the mailbox at {where} failed: {e}") from e
        if status != "OK":
            raise MailboxError(f"the mailbox at {where} has no folder {folder!r}")
        return int(data[0] or 0)


@contextmanager
def _session(url: str, timeout: float) -> Iterator[tuple[imaplib.IMAP4, str, str]]:
    """A logged-in connection to the mailbox, its folder and where it is (for messages)."""
    parts = urlsplit(url)
    folder = unquote(parts.path.lstrip("/")) or "INBOX"
    where = f"{parts.hostname}:{parts.port or (993 if parts.scheme == 'imaps' else 143)}"
    try:
        imap = _connect(parts.scheme, parts.hostname or "", parts.port, timeout)
    except (OSError, imaplib.IMAP4.error, ssl.SSLError) as e:
        raise MailboxError(f"cannot reach the mailbox at {where}: {e}") from e
    try:
        try:
            imap.login(unquote(parts.username or ""), unquote(parts.password or ""))
        except imaplib.IMAP4.error as e:
            raise MailboxError(f"the mailbox at {where} refused the login") from e
        yield imap, folder, where
    finally:
        try:
            imap.logout()
        except (OSError, imaplib.IMAP4.error):
            pass


def _connect(scheme: str, host: str, port: int | None, timeout: float) -> imaplib.IMAP4:
    if scheme == "imaps":
        return imaplib.IMAP4_SSL(
            host, port or 993, ssl_context=ssl.create_default_context(), timeout=timeout
        )
    imap = imaplib.IMAP4(host, port or 143, timeout=timeout)
    if "STARTTLS" in imap.capabilities:
        imap.starttls(ssl.create_default_context())
    return imap


def _file_all(imap: imaplib.IMAP4, folder: str, each: Callable[[bytes], Verdict]) -> PollReport:
    for name in (PROCESSED, UNREADABLE):
        imap.create(name)  # "already exists" is fine
    status, _ = imap.select(_quoted(folder))
    if status != "OK":
        raise imaplib.IMAP4.error(f"no folder {folder!r}")
    _, listed = imap.capability()  # after the login: the server may offer more now
    offered = set((listed[0] or b"").upper().split())
    # A message flagged \Deleted by an earlier poll that could not expunge is done with.
    _, found = imap.uid("SEARCH", "UNDELETED")
    handled = unreadable = left = 0
    for uid in (found[0] or b"").decode("ascii").split():
        # One byte more than the cap: enough to tell a message too big, never more.
        _, fetched = imap.uid("FETCH", uid, f"(BODY.PEEK[]<0.{MAX_MESSAGE_BYTES + 1}>)")
        data = next((item[1] for item in fetched if isinstance(item, tuple)), b"")
        verdict = each(data)
        if verdict == "retry":
            left += 1
            continue
        _move(imap, uid, PROCESSED if verdict == "handled" else UNREADABLE, offered)
        handled += verdict == "handled"
        unreadable += verdict != "handled"
    return PollReport(handled, unreadable, left)


def _move(imap: imaplib.IMAP4, uid: str, folder: str, offered: set[bytes]) -> None:
    """MOVE where the server has it (RFC 6851), else copy, flag and expunge this one
    message (UID EXPUNGE, RFC 4315, where offered), so no poll reads it twice."""
    if b"MOVE" in offered:
        imap.uid("MOVE", uid, folder)
        return
    imap.uid("COPY", uid, folder)
    imap.uid("STORE", uid, "+FLAGS", r"(\Deleted)")
    if b"UIDPLUS" in offered:
        imap.uid("EXPUNGE", uid)
    else:
        imap.expunge()


def _quoted(folder: str) -> str:
    return (
        folder
        if re.fullmatch(r"[A-Za-z0-9._/-]+", folder)
        else '"' + folder.replace("\\", "\\\\").replace('"', '\\"') + '"'
    )
