"""Fetch the raw bytes of a source from a path or an http(s) URL, politely and safely.

I/O only: no parsing and no product decisions here.  One deadline bounds a
whole fetch, connect to last byte, and a stop (SIGTERM) ends it at once.
Redirects stay on http(s), at most ``max_redirects``, and never lead from
a public address to a private one (checked on the address actually
connected to, so DNS cannot be used to sneak past).  Conditional GET
(ETag, Last-Modified), gzip and deflate with a cap on the decompressed
size, bounded retries on 5xx and timeouts with ``Retry-After`` honoured up
to a bound.  Built on the standard library's ``http.client``, because
checking the connected address needs control of the connection.
"""

from __future__ import annotations

import http.client
import ipaddress
import os
import socket
import ssl
import stat
import threading
import time
import zlib
from collections.abc import Callable, Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any
from urllib.parse import SplitResult, urljoin, urlsplit

from digest import __version__
from digest.errors import SourceError
from digest.text import is_web_url, printable

IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IpNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

_REDIRECTS = {301, 302, 303, 307, 308}
_CHUNK = 65_536


def is_url(location: str) -> bool:
    """Tell whether a source location is a URL rather than a file path."""
    return "://" in location


#: IPv6 prefixes whose last 32 bits are an IPv4 address: NAT64's well-known and
#: local-use prefixes (RFC 6052, 8215) and the deprecated IPv4-compatible form.
_EMBEDDING_IPV4 = (
    ipaddress.IPv6Network("64:ff9b::/96"),
    ipaddress.IPv6Network("64:ff9b:1::/48"),
    ipaddress.IPv6Network("::/96"),
)


def _embedded_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 one carries (mapped, compatible, NAT64, 6to4, Teredo)."""
    if address.ipv4_mapped:
        return address.ipv4_mapped
    if address.sixtofour:
        return address.sixtofour
    if address.teredo:
        return address.teredo[1]
    if any(address in network for network in _EMBEDDING_IPV4):
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def is_private(address: IpAddress, private_networks: tuple[IpNetwork, ...] | None = None) -> bool:
    """Whether an address is internal: loopback, private, link-local (cloud metadata
    lives there), site-local, shared, reserved or multicast, in any IPv6 form that
    carries an IPv4 address; or in ``private_networks`` when given."""
    candidates: list[IpAddress] = [address]
    if isinstance(address, ipaddress.IPv6Address):
        inner = _embedded_ipv4(address)
        if inner is not None:
            candidates.append(inner)
    if private_networks is not None:
        return any(a in network for a in candidates for network in private_networks)
    return any(
        not a.is_global
        or a.is_multicast
        or (isinstance(a, ipaddress.IPv6Address) and a.is_site_local)
        for a in candidates
    )


@dataclass(frozen=True)
class Validators:
    """What a server said identifies the version it sent, for a conditional GET next time."""

    etag: str | None = None
    last_modified: str | None = None


@dataclass(frozen=True)
class Retrieved:
    """The bytes of a source, or None when the server says it has not changed (304)."""

    data: bytes | None
    validators: Validators = Validators()


@dataclass(frozen=True)
class FetchPolicy:
    """How sources are fetched; the defaults are the settings' defaults."""

    #: The whole fetch, connect to last byte.
    timeout: float = 30.0
    max_bytes: int = 20_000_000
    max_redirects: int = 5
    #: Further tries after a 5xx, 429 or a timeout.
    retries: int = 2
    #: The longest wait a server's Retry-After may ask for.
    max_retry_after: float = 60.0
    #: A contact for the servers' operators (the installation's base URL).
    contact: str = ""
    #: The networks that count as private; None means every non-global address.
    private_networks: tuple[IpNetwork, ...] | None = field(default=None)

    @property
    def user_agent(self) -> str:
        contact = f"; +{self.contact}" if self.contact else ""
        return f"digest/{__version__} (research digest newsletter{contact})"


class _Retryable(Exception):
    def __init__(self, reason: str, retry_after: float | None = None) -> None:
        super().__init__(reason)
        self.retry_after = retry_after


def retrieve(
    location: str,
    *,
    policy: FetchPolicy,
    name: str | None = None,
    validators: Validators | None = None,
    stop: threading.Event | None = None,
) -> Retrieved:
    """Return the bytes at ``location``; raise ``SourceError`` naming it on failure."""
    label = name or location
    if is_url(location):
        scheme = location.split("://", 1)[0].lower()
        if not is_web_url(location):
            raise SourceError(label, f"unsupported URL scheme {scheme!r} (use http or https)")
        try:
            return _fetch_with_retries(
                location, label, policy, validators, stop or threading.Event()
            )
        except (ValueError, LookupError, OSError, http.client.HTTPException) as e:
            # Whatever a server (or one it redirects to) sends fails this source alone.
            raise SourceError(label, f"{location}: {type(e).__name__}: {e}") from e
    return Retrieved(_read_file(location, label, policy.max_bytes))


def _read_file(location: str, label: str, max_bytes: int) -> bytes:
    """A regular file's bytes, at most ``max_bytes`` of them counted as read (a device
    says its size is 0); a FIFO or a device is refused without blocking on it."""
    path = Path(location).expanduser()
    try:
        descriptor = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
        with os.fdopen(descriptor, "rb") as file:
            if stat.S_ISDIR(os.fstat(descriptor).st_mode):
                raise SourceError(label, f"{path} is a directory, not a file")
            if not stat.S_ISREG(os.fstat(descriptor).st_mode):
                raise SourceError(label, f"{path} is not a regular file (a pipe or a device?)")
            data = file.read(max_bytes + 1)
        if len(data) > max_bytes:
            raise SourceError(label, f"{path} is over the {max_bytes:,}-byte limit")
        return data
    except IsADirectoryError as e:
        raise SourceError(label, f"{path} is a directory, not a file") from e
    except FileNotFoundError as e:
        where = "" if label == location else f": {path}"
        raise SourceError(label, f"no such file{where}") from e
    except PermissionError as e:
        raise SourceError(label, f"permission denied: {path}") from e
    except OSError as e:
        raise SourceError(label, f"cannot read {path}: {e.strerror or e}") from e


def _fetch_with_retries(
    url: str,
    label: str,
    policy: FetchPolicy,
    validators: Validators | None,
    stop: threading.Event,
) -> Retrieved:
    for attempt in range(policy.retries + 1):
        try:
            return _fetch(url, label, policy, validators, stop)
        except _Retryable as e:
            if attempt == policy.retries:
                raise SourceError(label, f"{url}: {e} (after {attempt + 1} tries)") from e
            wait = min(
                e.retry_after if e.retry_after is not None else 2.0**attempt, policy.max_retry_after
            )
            if stop.wait(wait):
                raise SourceError(label, f"{url}: stopped while waiting to retry") from e
    raise AssertionError("unreachable")


def _fetch(
    url: str,
    label: str,
    policy: FetchPolicy,
    validators: Validators | None,
    stop: threading.Event,
) -> Retrieved:
    deadline = time.monotonic() + policy.timeout
    origin_is_public: bool | None = None
    for _ in range(policy.max_redirects + 1):
        parts = urlsplit(url)
        if not is_web_url(url) or not parts.hostname:
            raise SourceError(label, f"refused to follow a redirect to {url!r} (http(s) only)")

        def allowed(address: IpAddress, target: str = url) -> bool:
            nonlocal origin_is_public
            private = is_private(address, policy.private_networks)
            if origin_is_public is None:
                origin_is_public = not private  # the operator chose this source
            elif origin_is_public and private:
                why = f"{address} is private"
                raise SourceError(
                    label, f"refused a redirect from a public address to {target} ({why})"
                )
            return True

        with _connection(parts, deadline, stop, label, allowed) as connection:
            # Closed whatever happens: an unread response keeps the socket open.
            with closing(_get(connection, policy, validators, url)) as response:
                if response.status in _REDIRECTS:
                    url = _redirect_target(url, response.getheader("Location"), label)
                    continue
                if response.status == 304:
                    return Retrieved(None, validators or Validators())
                said = f"HTTP {response.status} {printable(response.reason, 100)}"
                if response.status == 429 or response.status >= 500:
                    raise _Retryable(said, _retry_after(response.getheader("Retry-After")))
                if response.status >= 400:
                    raise SourceError(label, f"{url}: {said}")
                data = _body(response, policy.max_bytes, url, label)
                etag, modified = response.getheader("ETag"), response.getheader("Last-Modified")
                return Retrieved(data, Validators(_validator(etag), _validator(modified)))
    raise SourceError(label, f"{url}: more than {policy.max_redirects} redirects")


@contextmanager
def _connection(
    url: SplitResult,
    deadline: float,
    stop: threading.Event,
    label: str,
    allowed: Callable[[IpAddress], bool],
) -> Iterator[http.client.HTTPConnection]:
    """A connection to one resolved address of ``host`` that ``allowed`` accepts (it is
    asked before connecting, so nothing reaches an address it refuses), closed at the
    deadline or a stop."""
    scheme, host = url.scheme.lower(), url.hostname or ""
    port = url.port or (443 if scheme == "https" else 80)
    remaining = deadline - time.monotonic()
    infos = _resolved(host, port, label)
    last_error: OSError | None = None
    for family, kind, proto, _, sockaddr in infos:
        allowed(ipaddress.ip_address(sockaddr[0]))
        raw = socket.socket(family, kind, proto)
        raw.settimeout(max(remaining, 0.001))
        try:
            raw.connect(sockaddr)
        except OSError as e:
            raw.close()
            last_error = e
            continue
        connection = _Connected(raw, scheme, host, port)
        finished, cut = threading.Event(), threading.Event()
        watchdog = threading.Thread(
            target=_cut_at_deadline, args=(raw, deadline, stop, finished, cut), daemon=True
        )
        watchdog.start()
        try:
            yield connection
        except (OSError, http.client.HTTPException) as e:
            raise (
                _why_cut(host, label, stop)
                if cut.is_set()
                else _Retryable(f"connection to {host} failed: {e}")
            ) from e
        finally:
            finished.set()
            connection.close()
            raw.close()
        if cut.is_set():  # the body ended because the socket was shut: it is not whole
            raise _why_cut(host, label, stop)
        return
    if isinstance(last_error, TimeoutError):
        raise _Retryable(f"cannot connect to {host}: timed out") from last_error
    raise SourceError(label, f"cannot connect to {host}: {last_error}") from last_error


def _resolved(host: str, port: int, label: str) -> list[Any]:
    """Every address of ``host``, as ``getaddrinfo`` gives them."""
    try:
        return socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError as e:
        raise SourceError(label, f"cannot resolve {host}: {e.strerror or e}") from e
    except UnicodeError as e:  # a label over 63 characters, an empty label
        raise SourceError(label, f"cannot resolve {host}: not a host name") from e


def _cut_at_deadline(
    raw: socket.socket,
    deadline: float,
    stop: threading.Event,
    finished: threading.Event,
    cut: threading.Event,
) -> None:
    """Shut the socket down when the deadline passes or a stop is asked, unless done first."""
    while not finished.is_set():
        remaining = deadline - time.monotonic()
        if remaining <= 0 or stop.is_set():
            cut.set()
            try:
                raw.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            return
        finished.wait(min(remaining, 0.1))


def _why_cut(host: str, label: str, stop: threading.Event) -> Exception:
    if stop.is_set():
        return SourceError(label, f"{host}: stopped (the worker is shutting down)")
    return _Retryable(f"no complete answer from {host} within the fetch deadline")


class _Connected(http.client.HTTPConnection):
    """An HTTP(S) connection over a socket already connected to a checked address."""

    def __init__(self, raw: socket.socket, scheme: str, host: str, port: int) -> None:
        super().__init__(host, port)
        self._raw, self._scheme = raw, scheme

    def connect(self) -> None:
        if self._scheme == "https":
            self.sock = ssl.create_default_context().wrap_socket(
                self._raw, server_hostname=self.host
            )
        else:
            self.sock = self._raw


def _get(
    connection: http.client.HTTPConnection,
    policy: FetchPolicy,
    validators: Validators | None,
    url: str,
) -> http.client.HTTPResponse:
    split = urlsplit(url)
    target = (split.path or "/") + (f"?{split.query}" if split.query else "")
    headers = {"User-Agent": policy.user_agent, "Accept-Encoding": "gzip, deflate", "Accept": "*/*"}
    if validators and validators.etag:
        headers["If-None-Match"] = validators.etag
    if validators and validators.last_modified:
        headers["If-Modified-Since"] = validators.last_modified
    connection.request("GET", target, headers=headers)
    return connection.getresponse()


def _body(response: http.client.HTTPResponse, max_bytes: int, url: str, label: str) -> bytes:
    encoding = (response.getheader("Content-Encoding") or "identity").strip().lower()
    if encoding not in ("identity", "", "gzip", "x-gzip", "deflate"):
        raise SourceError(label, f"{url}: unsupported Content-Encoding {encoding!r}")
    inflate = _Inflate(encoding) if encoding not in ("identity", "") else None
    parts: list[bytes] = []
    size = 0
    while True:
        chunk = response.read(_CHUNK)
        try:
            piece = chunk if inflate is None else inflate.more(chunk, max_bytes + 1 - size)
        except zlib.error as e:
            raise SourceError(label, f"{url}: the {encoding} response is corrupt") from e
        size += len(piece)
        if size > max_bytes:
            raise SourceError(label, f"{url}: response is over the {max_bytes:,}-byte limit")
        parts.append(piece)
        if not chunk:
            return b"".join(parts)


class _Inflate:
    """Decompresses gzip or deflate (zlib-wrapped or raw), never more than asked at a time."""

    def __init__(self, encoding: str) -> None:
        self.raw_fallback = encoding == "deflate"
        # 47: a gzip or zlib header, told apart from the data itself.
        self.state = zlib.decompressobj(47)
        self.started = False

    def more(self, chunk: bytes, room: int) -> bytes:
        """At most ``room`` bytes of output (more would be over the limit anyway)."""
        if not chunk:
            return self.state.flush()[:room]
        try:
            out = self.state.decompress(chunk, room)
        except zlib.error:
            if not (self.raw_fallback and not self.started):
                raise
            self.state = zlib.decompressobj(-15)  # some servers send deflate without a header
            out = self.state.decompress(chunk, room)
        self.started = True
        return out


def _redirect_target(url: str, target: str | None, label: str) -> str:
    """Where a redirect leads, or ``SourceError`` when its Location is no http(s) URL."""
    if not target:
        raise SourceError(label, f"{url}: a redirect without a Location")
    try:
        joined = urljoin(url, target.strip())
        parts = urlsplit(joined)
        parts.port  # noqa: B018 - raises ValueError for a port out of range or not a number
    except ValueError as e:
        raise SourceError(label, f"{url}: refused a redirect to a malformed URL {target!r}") from e
    if not is_web_url(joined) or not parts.hostname:
        raise SourceError(label, f"refused to follow a redirect to {target!r} (http(s) only)")
    return joined


def _validator(value: str | None) -> str | None:
    """An ETag or Last-Modified worth sending back: printable ASCII of a sane length."""
    if value is None or len(value) > 512 or not (value.isascii() and value.isprintable()):
        return None
    return value


def _retry_after(value: str | None) -> float | None:
    if not value:
        return None
    value = value.strip()
    if value.isascii() and value.isdigit():  # "²" is a digit to str.isdigit
        return float(value[:8])
    try:
        wait = parsedate_to_datetime(value).timestamp() - time.time()
    except (TypeError, ValueError, OverflowError, OSError):
        return None
    return max(wait, 0.0)
