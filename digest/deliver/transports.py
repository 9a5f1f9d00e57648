"""Transports: hand a message to an SMTP server, or write it as a .eml file.

I/O only, no product decisions: a transport sends what it is given and says
how it went.  ``TemporaryFailure`` (4xx, timeouts, dropped connections) may
succeed later; ``PermanentFailure`` (5xx for a recipient) will not;
``TransportError`` means no message can be sent with these settings
(bad credentials, TLS refused) and stops the run.
"""

from __future__ import annotations

import os
import re
import smtplib
import socket
import ssl
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, Self

from digest.config import Settings, SmtpSettings
from digest.errors import DigestError


class TemporaryFailure(Exception):
    """A send that may work if tried again later; the reason says why it did not now."""


class PermanentFailure(Exception):
    """The server refused this message or recipient for good; the reason is its words."""


class MessageRefused(PermanentFailure):
    """The server refused this message (its size, its content) at the end of DATA, naming
    no recipient: that message fails; the recipient and the session are not in question."""


class Deferred(TemporaryFailure):
    """The server answered 4xx to this recipient or message (greylisting, a full
    mailbox): it is up and talking, and asks us to try this one again later."""


class TransportError(DigestError):
    """No message can be sent with these settings (credentials, TLS, DKIM key)."""


class SessionRefused(TransportError):
    """The server refused the session, not a recipient: nobody can be mailed now.

    The run stops and every delivery stays queued.
    """

    hint = "nothing was marked failed: every delivery stays queued for the next run"


class RefusedAtConnect(SessionRefused):
    """The server refused a new connection (421 too many, 554): with others open, a
    pool takes it as its limit; alone, nobody can be mailed now."""


class CannotConnect(TemporaryFailure):
    """No connection could be made (refused, unreachable, timed out)."""


class OutcomeUnknown(TemporaryFailure):
    """The message was sent but no answer came: it may or may not have been accepted."""


@dataclass(frozen=True)
class Envelope:
    """Where a message goes: MAIL FROM, RCPT TO (ASCII, checked), and its Message-ID;
    ``eight_bit`` when its bytes need BODY=8BITMIME."""

    sender: str
    recipient: str
    message_id: str
    eight_bit: bool = False


class Transport(Protocol):
    """Something that delivers message bytes; used as a context manager."""

    def __enter__(self) -> Transport: ...

    def __exit__(self, *exc: object) -> None: ...

    def send(self, envelope: Envelope, message: bytes, *, then: Envelope | None = None) -> str:
        """Deliver one message; return the server's reply (or where it was written).

        ``then`` is the envelope this transport is given next, if the caller knows it: a
        server that pipelines hears its transaction begin right behind this message's end
        (RFC 2920), so that each message costs one round trip, not two."""
        ...

    def takes_8bit(self) -> bool:
        """Whether a message may have raw 8-bit UTF-8 parts (SMTP's 8BITMIME)."""
        ...


@dataclass(frozen=True)
class RelayOffer:
    """What an SMTP server offered once digest was in: its extensions (upper case), the
    largest message it takes (None: it did not say) and the TLS version (None: plain)."""

    extensions: frozenset[str]
    max_size: int | None
    tls: str | None


class SmtpTransport:
    """One SMTP connection reused for a whole batch, reconnecting when the server drops it."""

    def __init__(self, settings: SmtpSettings) -> None:
        if settings.host is None:
            raise ValueError("SmtpTransport needs SMTP_HOST")
        self.settings = settings
        self._smtp: smtplib.SMTP | None = None
        #: A transaction begun behind the last message's end (PIPELINING), its replies
        #: still to read: the next ``send`` must be for this envelope.
        self._begun: Envelope | None = None

    def __enter__(self) -> SmtpTransport:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Say QUIT and close the connection without waiting for the answer (nothing is
        left to learn from it).  A transaction begun and never sent is abandoned by
        closing alone: after its DATA, a QUIT would be read as message text."""
        if self._smtp is not None:
            try:
                if self._begun is None:
                    self._smtp.send(b"QUIT\r\n")
            except (smtplib.SMTPException, OSError):
                pass
            self._drop()

    def _tls_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context()
        if self.settings.ca_file:
            context.load_verify_locations(cafile=str(self.settings.ca_file))
        return context

    def _connect(self) -> smtplib.SMTP:
        settings = self.settings
        host = settings.host or ""
        smtp: smtplib.SMTP | None = None
        try:
            if settings.security == "ssl":
                smtp = smtplib.SMTP_SSL(
                    host,
                    settings.port,
                    local_hostname=settings.ehlo_name,
                    timeout=settings.timeout,
                    context=self._tls_context(),
                )
            else:
                smtp = smtplib.SMTP(
                    host, settings.port, local_hostname=settings.ehlo_name, timeout=settings.timeout
                )
            self._handshake(smtp)
        except BaseException as e:
            if smtp is not None:
                smtp.close()
            raise self._explain(e) from e
        return smtp

    def _handshake(self, smtp: smtplib.SMTP) -> None:
        settings = self.settings
        if smtp.sock is not None:
            # Small SMTP commands must not wait for Nagle's algorithm.
            smtp.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        code, message = smtp.ehlo()
        if code != 250:  # a server at its limit may say 421 here rather than on connect
            raise smtplib.SMTPHeloError(code, message)
        if settings.security == "starttls":
            if not smtp.has_extn("starttls"):
                raise TransportError(
                    f"SMTP server {settings.where} does not offer STARTTLS",
                    hint="set SMTP_SECURITY=ssl or none if that is intended",
                )
            smtp.starttls(context=self._tls_context())
            smtp.ehlo()
        if settings.username:
            smtp.login(settings.username, settings.password or "")

    def _explain(self, error: BaseException) -> BaseException:
        """Turn a connection-time error into TransportError (fatal) or TemporaryFailure."""
        where = self.settings.where
        if isinstance(error, TransportError | KeyboardInterrupt | SystemExit):
            return error
        if isinstance(error, smtplib.SMTPResponseException) and (
            error.smtp_code == 421 or error.smtp_code >= 500 or _is_policy(error.smtp_error)
        ):
            if isinstance(error, smtplib.SMTPAuthenticationError) and error.smtp_code != 421:
                return TransportError(
                    f"SMTP server {where} refused the login: {_reply(error)}",
                    hint="check SMTP_USERNAME and SMTP_PASSWORD",
                )
            return RefusedAtConnect(f"SMTP server {where} refused the session: {_reply(error)}")
        if isinstance(error, smtplib.SMTPAuthenticationError):
            return TransportError(
                f"SMTP server {where} refused the login: {_reply(error)}",
                hint="check SMTP_USERNAME and SMTP_PASSWORD",
            )
        if isinstance(error, ssl.SSLError):
            return TransportError(
                f"TLS with {where} failed: {error.reason or error}",
                hint="check SMTP_SECURITY, SMTP_PORT and SMTP_CA_FILE",
            )
        if isinstance(error, smtplib.SMTPNotSupportedError):
            return TransportError(f"SMTP server {where}: {error}")
        if isinstance(error, smtplib.SMTPException | OSError):
            return CannotConnect(f"cannot connect to {where}: {error}")
        return error

    def takes_8bit(self) -> bool:
        """Whether the server offers 8BITMIME (connecting to ask, if need be)."""
        return "8BITMIME" in self.offers().extensions

    def offers(self) -> RelayOffer:
        """What the server offers after the handshake a send makes (TLS and login as
        configured), connecting to ask if need be."""
        if self._smtp is None:
            self._smtp = self._connect()
        smtp = self._smtp
        tls = smtp.sock.version() if isinstance(smtp.sock, ssl.SSLSocket) else None
        size = smtp.esmtp_features.get("size", "")
        return RelayOffer(
            extensions=frozenset(name.upper() for name in smtp.esmtp_features),
            max_size=int(size) if size.isdigit() else None,
            tls=tls,
        )

    def send(self, envelope: Envelope, message: bytes, *, then: Envelope | None = None) -> str:
        """Send one message with MAIL, RCPT and DATA; return the server's reply to DATA.

        Where the server offers PIPELINING the three commands go in one write and
        their replies are read together, each judged as in lock-step; ``then``'s
        three follow this message's end in the same write."""
        if self._begun is not None and self._begun != envelope:
            self._drop()  # not what was begun (a stop came between): start afresh
        if self._smtp is None:
            self._smtp = self._connect()
        smtp = self._smtp
        with self._talking():
            if self._begun is None:
                self._begin(smtp, envelope)
            self._begun = None
            self._opened(smtp, envelope)
            after = b""
            if then is not None and self._pipelines(smtp):
                after = self._commands(smtp, then)
                self._begun = then
            smtp.send(_dot_stuffed(message) + after)
        code, reply = self._final_reply(smtp, envelope.recipient)
        return f"{code} {_text(reply)}"

    def _pipelines(self, smtp: smtplib.SMTP) -> bool:
        return bool(smtp.has_extn("pipelining"))

    def _commands(self, smtp: smtplib.SMTP, envelope: Envelope) -> bytes:
        """MAIL, RCPT and DATA for one envelope, as they go on the wire."""
        body = ""
        if envelope.eight_bit:
            if not smtp.has_extn("8bitmime"):
                raise TransportError(
                    f"SMTP server {self.settings.where} stopped offering 8BITMIME during the run",
                    hint="run again: digest asks the server before composing",
                )
            body = " BODY=8BITMIME"
        # smtplib's mail(), rcpt() and data() would parse the addresses again and
        # run a regular expression over the whole message; the addresses are checked
        # (ASCII) already, and dot-stuffing is a replace.
        return (
            f"MAIL FROM:<{envelope.sender}>{body}\r\nRCPT TO:<{envelope.recipient}>\r\nDATA\r\n"
        ).encode("ascii")

    def _begin(self, smtp: smtplib.SMTP, envelope: Envelope) -> None:
        """Say MAIL, RCPT and DATA: in one write where the server pipelines, else each
        after the answer to the one before (so a refusal stops at once)."""
        commands = self._commands(smtp, envelope)
        if self._pipelines(smtp):
            smtp.send(commands)
            return
        recipient = envelope.recipient
        for line, command, codes in zip(
            commands.split(b"\r\n")[:3], _COMMANDS, _EXPECTED, strict=True
        ):
            smtp.send(line + b"\r\n")
            if command != "DATA":
                self._expect(smtp.getreply(), codes, command, recipient)

    def _opened(self, smtp: smtplib.SMTP, envelope: Envelope) -> None:
        """Read the answers to MAIL, RCPT and DATA (those not read yet) and judge the
        first that is not a yes, as lock-step would have; the server must be at 354."""
        recipient = envelope.recipient
        if not self._pipelines(smtp):
            self._expect(smtp.getreply(), (354,), "DATA", recipient)
            return
        answers = []
        for command, codes in zip(_COMMANDS, _EXPECTED, strict=True):
            answer = smtp.getreply()  # every reply, in order
            if answer[0] == 421:  # closing: no more replies will come
                self._expect(answer, codes, command, recipient)
            answers.append(answer)
        refused = next(
            (
                (answer, command, codes)
                for answer, command, codes in zip(answers, _COMMANDS, _EXPECTED, strict=True)
                if answer[0] not in codes
            ),
            None,
        )
        if refused is None:
            return
        if answers[2][0] == 354:  # in DATA with nobody to deliver to: end it empty
            smtp.send(b".\r\n")
            smtp.getreply()
        answer, command, codes = refused
        self._expect(answer, codes, command, recipient)

    def _final_reply(self, smtp: smtplib.SMTP, recipient: str) -> tuple[int, bytes]:
        """The answer to the end of DATA, waited for long (RFC 5321 4.5.3.2.6 says 10
        minutes): the message is sent, so no answer means nobody knows if it arrived."""
        try:
            if smtp.sock is not None:
                smtp.sock.settimeout(self.settings.data_timeout)
            answer = smtp.getreply()
            if smtp.sock is not None:
                smtp.sock.settimeout(self.settings.timeout)
        except (smtplib.SMTPServerDisconnected, OSError) as e:
            self._drop()
            raise OutcomeUnknown(
                f"no answer to the end of DATA ({e or type(e).__name__}): it may have arrived"
            ) from e
        code, reply = answer
        if code != 250:
            if code == 421:
                self._drop()
            # The transaction is over either way (no RSET: a next one may be begun).
            _raise_for(code, reply, "end of DATA", recipient)
        return answer

    @contextmanager
    def _talking(self) -> Iterator[None]:
        """Turn a lost connection into a TemporaryFailure (the next send reconnects)."""
        try:
            yield
        except (smtplib.SMTPServerDisconnected, OSError) as e:
            self._drop()
            raise TemporaryFailure(f"connection lost: {e or type(e).__name__}") from e

    def _expect(
        self, answer: tuple[int, bytes], codes: tuple[int, ...], command: str, recipient: str
    ) -> tuple[int, bytes]:
        code, reply = answer
        if code not in codes:
            if code == 421:
                self._drop()
            else:
                self._reset()
            _raise_for(code, reply, command, recipient)
        return answer

    def _reset(self) -> None:
        try:
            if self._smtp is not None:
                self._smtp.rset()
        except (smtplib.SMTPException, OSError):
            self._drop()

    def _drop(self) -> None:
        self._begun = None
        if self._smtp is not None:
            self._smtp.close()
            self._smtp = None


#: The commands that open a transaction, and the answers that let it go on.
_COMMANDS = ("MAIL FROM", "RCPT TO", "DATA")
_EXPECTED: tuple[tuple[int, ...], ...] = ((250,), (250, 251), (354,))


class _Sessionless:
    """A transport with no session to open or close, that takes any bytes."""

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def takes_8bit(self) -> bool:
        return True


class OutboxTransport(_Sessionless):
    """Writes each message as a .eml file, for local use when no SMTP server is set."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def send(self, envelope: Envelope, message: bytes, *, then: Envelope | None = None) -> str:
        """Write the message to ``folder/<message id>.eml`` atomically; return the path."""
        self.folder.mkdir(parents=True, exist_ok=True)
        name = re.sub(r"[^A-Za-z0-9._-]+", "_", envelope.message_id.strip("<>")) + ".eml"
        target = self.folder / name
        descriptor, temporary = tempfile.mkstemp(dir=self.folder, suffix=".part")
        try:
            with os.fdopen(descriptor, "wb") as file:
                file.write(message)
            os.replace(temporary, target)
        except OSError as e:
            Path(temporary).unlink(missing_ok=True)
            raise TemporaryFailure(f"cannot write {target}: {e.strerror or e}") from e
        return f"written to {target}"


def relay_offer(settings: SmtpSettings) -> RelayOffer:
    """What the relay offers once digest is in (TLS and login as a send makes them);
    QUIT follows at once.  Raises as a send's connection would."""
    with SmtpTransport(settings) as transport:
        return transport.offers()


def transport_for(settings: Settings, relay: SmtpSettings | None = None) -> Transport:
    """SMTP to ``relay`` (default: the first) when SMTP_HOST is set, else .eml files in
    the outbox folder."""
    if settings.smtp.host:
        return SmtpTransport(relay or settings.smtp)
    return OutboxTransport(settings.outbox_dir)


def _dot_stuffed(message: bytes) -> bytes:
    """The message as DATA carries it: lines starting with a dot doubled, ended by CRLF.CRLF."""
    stuffed = message.replace(b"\n.", b"\n..")
    if stuffed.startswith(b"."):
        stuffed = b"." + stuffed
    return stuffed + (b".\r\n" if stuffed.endswith(b"\r\n") else b"\r\n.\r\n")


def _text(reply: bytes | str) -> str:
    text = reply.decode("utf-8", "replace") if isinstance(reply, bytes) else reply
    return " ".join(text.split())


def _reply(error: smtplib.SMTPResponseException) -> str:
    return f"{error.smtp_code} {_text(error.smtp_error)}"


def _is_policy(reply: bytes | str) -> bool:
    """Whether a reply carries a 5.7.x enhanced status: a security or policy refusal."""
    return bool(re.match(r"\s*5\.7\.\d", _text(reply)))


def _raise_for(code: int, reply: bytes | str, command: str, recipient: str) -> None:
    """Raise what a refusal means: of the session (the run stops, everyone stays queued),
    of this message for now, or of this one recipient for good."""
    words = f"{command}: {code} {_text(reply)}"
    if code == 421:
        raise SessionRefused(f"the server is closing the session: {words}")
    if command == "RCPT TO":
        if 400 <= code < 500:
            raise Deferred(words)
        raise PermanentFailure(words)
    if code == 530 or (code >= 500 and _is_policy(reply) and command == "MAIL FROM"):
        raise SessionRefused(f"the server refuses to take mail from us: {words}")
    if 400 <= code < 500:
        raise Deferred(words) if command != "MAIL FROM" else TemporaryFailure(words)
    if command == "MAIL FROM":
        raise SessionRefused(f"the server refused our sender address: {words}")
    if recipient.lower() in _text(reply).lower():
        raise PermanentFailure(words)  # a refusal of DATA that names this recipient
    # Too big (5.3.4), its content (5.7.1): this message, not the session.  Several
    # messages refused in a row are the sender's business (``DeliverySettings``).
    raise MessageRefused(words)


class RehearsalTransport(_Sessionless):
    """Takes every message and keeps none: a dry run's mail server."""

    def send(self, envelope: Envelope, message: bytes, *, then: Envelope | None = None) -> str:
        return "250 rehearsed: not sent"
