"""A real SMTP server in-process (aiosmtpd) that records what it receives.

It can refuse recipients (4xx a number of times, or 5xx), drop the
connection mid-batch, require STARTTLS or implicit TLS, and require AUTH,
so the tests exercise digest's transport against the real protocol.
"""

from __future__ import annotations

import asyncio
import email
import email.policy
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

#: Whether the test servers offer PIPELINING unless told otherwise.
PIPELINING = True


@dataclass
class Received:
    sender: str
    recipients: list[str]
    data: bytes
    #: The name the client gave in EHLO.
    helo: str = ""
    #: What MAIL FROM said after the address (BODY=8BITMIME, say).
    options: list[str] = field(default_factory=list)
    #: When it was taken (time.monotonic()).
    arrived: float = field(default_factory=time.monotonic)

    @property
    def message(self) -> EmailMessage:
        parsed = email.message_from_bytes(self.data, policy=email.policy.default)
        assert isinstance(parsed, EmailMessage)
        return parsed


@dataclass
class Recorder:
    """The handler: records messages and misbehaves on request."""

    received: list[Received] = field(default_factory=list)
    #: address -> (code and text, how many times; None for always)
    refuse: dict[str, tuple[str, int | None]] = field(default_factory=dict)
    #: drop the connection instead of answering the DATA of message number N (1-based)
    drop_at: set[int] = field(default_factory=set)
    data_commands: int = 0
    #: called with the number of messages accepted so far, before accepting one more
    before_accept: Callable[[int], None] | None = None
    #: seconds to wait before answering the end of DATA (the message is kept all the same)
    answer_delay: float = 0.0
    #: the reply to MAIL FROM, instead of 250 (a server refusing our sender)
    refuse_sender: str | None = None
    #: recipient -> the reply to the end of DATA of a message to them (too big, content)
    refuse_data: dict[str, str] = field(default_factory=dict)
    #: the reply to the end of DATA of every message, when set
    refuse_data_all: str | None = None
    #: no message is answered until this many sessions said EHLO (senders that all start)
    hold_until_sessions: int = 0
    #: sessions after this many are refused at EHLO with 421 (0: no limit)
    max_sessions: int = 0
    sessions_seen: int = 0
    #: whether EHLO offers 8BITMIME (aiosmtpd does; some servers do not)
    offer_8bitmime: bool = True
    #: whether EHLO offers PIPELINING (aiosmtpd reads commands in order either way, so
    #: it takes pipelined ones; it does not say so itself, as most relays do); None:
    #: as ``PIPELINING`` says (which the tests of both ways set)
    offer_pipelining: bool | None = None
    #: for the first this many messages, before answering the end of DATA, wait (up to
    #: ten seconds) for the next MAIL FROM to be in the input already, and note whether
    #: it was: a client that pipelines the next transaction behind each message's end
    behind_wanted: int = 0
    behind: list[bool] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    async def handle_RCPT(  # noqa: N802 - aiosmtpd's hook name
        self, server: Any, session: Any, envelope: Any, address: str, options: list[str]
    ) -> str:
        with self.lock:
            rule = self.refuse.get(address)
            if rule is not None:
                reply, times = rule
                if times is None:
                    return reply
                if times > 0:
                    self.refuse[address] = (reply, times - 1)
                    return reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_EHLO(  # noqa: N802 - aiosmtpd's hook name
        self, server: Any, session: Any, envelope: Any, hostname: str, responses: list[str]
    ) -> list[str]:
        session.host_name = hostname
        self.sessions_seen += 1
        if self.max_sessions and self.sessions_seen > self.max_sessions:
            return ["421 4.7.0 Too many connections from your host"]
        offered = [r for r in responses if self.offer_8bitmime or r != "250-8BITMIME"]
        pipelining = PIPELINING if self.offer_pipelining is None else self.offer_pipelining
        return offered[:-1] + ["250-PIPELINING"] + offered[-1:] if pipelining else offered

    async def handle_MAIL(  # noqa: N802 - aiosmtpd's hook name
        self, server: Any, session: Any, envelope: Any, address: str, options: list[str]
    ) -> str:
        if self.refuse_sender is not None:
            return self.refuse_sender
        envelope.mail_from = address
        envelope.mail_options.extend(options)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        while self.sessions_seen < self.hold_until_sessions:
            await asyncio.sleep(0.01)
        if len(self.behind) < self.behind_wanted:
            self.behind.append(await _next_mail_comes(server))
        answer = self._accept(server, session, envelope)
        if self.answer_delay:  # the message is kept (queued), but the answer comes late
            await asyncio.sleep(self.answer_delay)
        return answer

    def _accept(self, server: Any, session: Any, envelope: Any) -> str:
        with self.lock:
            refused = self.refuse_data_all or next(
                (self.refuse_data[r] for r in envelope.rcpt_tos if r in self.refuse_data), None
            )
            if refused is not None:
                return refused
            self.data_commands += 1
            if self.data_commands in self.drop_at:
                server.transport.close()
                return "421 closing"
            if self.before_accept is not None:
                self.before_accept(len(self.received))
            self.received.append(
                Received(
                    envelope.mail_from,
                    list(envelope.rcpt_tos),
                    envelope.original_content,
                    session.host_name or "",
                    list(envelope.mail_options),
                )
            )
        return "250 2.0.0 queued as " + str(len(self.received))

    def by_recipient(self) -> dict[str, list[Received]]:
        found: dict[str, list[Received]] = {}
        for item in self.received:
            for recipient in item.recipients:
                found.setdefault(recipient, []).append(item)
        return found


async def _next_mail_comes(server: Any, seconds: float = 10.0) -> bool:
    """Whether the client's next MAIL FROM reaches the server's input before it answers
    the end of DATA (aiosmtpd reads commands one by one from a buffered stream)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    while loop.time() < deadline:
        if b"MAIL FROM" in bytes(server._reader._buffer):
            return True
        await asyncio.sleep(0.005)
    return False


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class _Controller(Controller):
    def __init__(self, handler: Any, *, implicit_tls: ssl.SSLContext | None, **kwargs: Any):
        self.implicit_tls = implicit_tls
        super().__init__(handler, hostname="127.0.0.1", port=free_port(), **kwargs)

    def _create_server(self) -> Any:
        return self.loop.create_server(
            self._factory_invoker, host=self.hostname, port=self.port, ssl=self.implicit_tls
        )

    def _trigger_server(self) -> None:
        # aiosmtpd's readiness probe speaks plain TCP; with implicit TLS wrap it.
        if self.implicit_tls is None:
            super()._trigger_server()
            return
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        with socket.create_connection((self.hostname, self.port), timeout=5) as raw:
            with context.wrap_socket(raw) as tls:
                tls.recv(1024)


@contextmanager
def smtp_server(
    *,
    starttls: ssl.SSLContext | None = None,
    implicit_tls: ssl.SSLContext | None = None,
    credentials: tuple[str, str] | None = None,
) -> Iterator[tuple[Recorder, int]]:
    """Run a recording SMTP server on a free loopback port; yield (recorder, port)."""
    recorder = Recorder()
    kwargs: dict[str, Any] = {"enable_SMTPUTF8": True}
    if starttls is not None:
        kwargs |= {"tls_context": starttls, "require_starttls": True}
    if credentials is not None:

        def authenticate(server: Any, session: Any, envelope: Any, mechanism: str, data: Any):  # type: ignore[no-untyped-def]
            ok = (
                isinstance(data, LoginPassword)
                and (data.login.decode(), data.password.decode()) == credentials
            )
            return AuthResult(success=ok, handled=False)

        kwargs |= {
            "authenticator": authenticate,
            "auth_required": True,
            # With implicit TLS aiosmtpd cannot tell the socket is encrypted; it is.
            "auth_require_tls": starttls is not None,
        }
    controller = _Controller(recorder, implicit_tls=implicit_tls, **kwargs)
    controller.start()
    try:
        yield recorder, controller.port
    finally:
        controller.stop()


def server_tls(folder: Path) -> tuple[ssl.SSLContext, Path]:
    """A server TLS context with a certificate for 127.0.0.1 from a CA of our own, and
    the CA file that trusts it (written to ``folder``)."""
    import trustme

    ca = trustme.CA()
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1", "localhost").configure_cert(context)
    ca_file = folder / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    return context, ca_file
