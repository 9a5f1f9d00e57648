"""A source is an isolation boundary, and so is an item.

Whatever a feed server (or one it redirects to) answers, and whatever a file
is, that source fails with one printable line and the others are read; one
bad item costs only itself.  The chaos server answers with generated status
lines, headers and redirects, as raw bytes on a loopback socket.
"""

from __future__ import annotations

import ipaddress
import json
import os
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from digest.app import job
from digest.config import SourceSpec
from digest.errors import SourceError
from digest.ingest import FetchPolicy, SourceLimits, parse_source, retrieve
from digest.ingest.retrieve import is_private
from digest.store import Store

from .conftest import OWN_DUMP, TODAY

QUICK = FetchPolicy(timeout=5.0, retries=1, max_retry_after=0.01)
NOW = datetime(2026, 11, 28, 7, tzinfo=UTC)


class ChaosServer:
    """Answers every request with the bytes it is given, then hangs up."""

    def __init__(self) -> None:
        self.answer = b"HTTP/1.1 200 OK\r\n\r\n"
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.closed = threading.Event()
        threading.Thread(target=self._serve, daemon=True).start()

    def url(self, path: str = "/feed") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def _serve(self) -> None:
        while not self.closed.is_set():
            try:
                connection, _ = self.listener.accept()
            except OSError:
                return
            with connection:
                connection.settimeout(5)
                try:
                    connection.recv(65536)
                    connection.sendall(self.answer)
                except OSError:
                    pass


@contextmanager
def chaos_server() -> Iterator[ChaosServer]:
    server = ChaosServer()
    try:
        yield server
    finally:
        server.closed.set()
        server.listener.close()


_REASON = st.one_of(
    st.text(max_size=40).map(lambda t: t.replace("\r", "").replace("\n", "")),
    st.sampled_from(["\x1b]0;pwned\x07", "\x1b[2J", "OK\x00", "Service \x9b Unavailable"]),
)
_LOCATION = st.one_of(
    st.sampled_from(
        [
            "http://[::1",
            "http://a.example:99999/",
            "http://a.example:abc/",
            "http://" + "a" * 64 + ".example/",
            "ftp://a.example/",
            "//",
            "",
            "http://127.0.0.1:1/x",
            "/feed",
            "http://[::ffff:10.0.0.1]/",
            "http://\x00/",
        ]
    ),
    st.text(max_size=60).map(lambda t: t.replace("\r", "").replace("\n", "")),
)
_HEADER = st.one_of(
    st.tuples(st.just("Location"), _LOCATION),
    st.tuples(
        st.just("Retry-After"),
        st.sampled_from(["²", "1" * 400, "-1", "Fri, 31 Dec 9999 23:59:59 GMT", "0", "nan"]),
    ),
    st.tuples(st.sampled_from(["ETag", "Last-Modified"]), _REASON),
    st.tuples(st.just("Content-Encoding"), st.sampled_from(["gzip", "deflate", "br", "x"])),
    st.tuples(st.just("Content-Length"), st.sampled_from(["-1", "99999999999", "abc", "5"])),
    st.tuples(st.just("Transfer-Encoding"), st.sampled_from(["chunked", "gzip, chunked"])),
)


@st.composite
def answers(draw: st.DrawFn) -> bytes:
    status = draw(
        st.one_of(
            st.sampled_from([200, 301, 302, 304, 307, 404, 429, 500, 503]), st.integers(0, 999)
        )
    )
    line = f"HTTP/1.1 {status} {draw(_REASON)}".encode("utf-8", "surrogatepass")
    if draw(st.booleans()):
        line = draw(st.sampled_from([b"HTTP/1.1", b"garbage", b"HTTP/9 200 OK", b""]))
    headers = b"".join(
        f"{k}: {v}\r\n".encode("utf-8", "surrogatepass")
        for k, v in draw(st.lists(_HEADER, max_size=4))
    )
    body = draw(st.one_of(st.binary(max_size=300), st.just(OWN_DUMP.read_bytes()[:2000])))
    return line + b"\r\n" + headers + b"\r\n" + body


def test_whatever_a_feed_server_answers_fails_that_source_alone(any_store: Store) -> None:
    good = SourceSpec("own dump", str(OWN_DUMP), "dump")
    with chaos_server() as server:
        bad = SourceSpec("chaos", server.url())

        @settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
        @given(answers())
        def each(answer: bytes) -> None:
            server.answer = answer
            report = job.ingest(
                any_store,
                [bad, good],
                job.Reading(now=NOW, zone=ZoneInfo("UTC"), limits=SourceLimits(), fetch=QUICK),
            )
            reports = {r.source: r for r in report.sources}
            assert reports["own dump"].ok
            error = reports["chaos"].error or ""
            assert error.isprintable() and "\x1b" not in error

        each()


@pytest.mark.parametrize(
    "answer",
    [
        b"HTTP/1.1 302 Found\r\nLocation: http://[::1\r\n\r\n",
        b"HTTP/1.1 302 Found\r\nLocation: http://a.example:99999/\r\n\r\n",
        b"HTTP/1.1 302 Found\r\nLocation: http://a.example:abc/\r\n\r\n",
        b"HTTP/1.1 302 Found\r\nLocation: http://" + b"a" * 64 + b".example/\r\n\r\n",
        "HTTP/1.1 503 Busy\r\nRetry-After: ²\r\n\r\n".encode(),
        b"HTTP/1.1 404 \x1b]0;pwned\x07\r\n\r\n",
    ],
    ids=["unclosed-bracket", "port-99999", "port-abc", "long-label", "superscript", "osc"],
)
def test_each_malformed_answer_is_one_clear_line(answer: bytes) -> None:
    with chaos_server() as server:
        server.answer = answer
        with pytest.raises(SourceError) as raised:
            retrieve(server.url(), policy=QUICK, name="chaos")
    assert raised.value.reason.isprintable()
    assert "\x1b" not in str(raised.value)


def test_a_nul_in_an_etag_or_reason_is_not_stored(any_store: Store) -> None:
    with chaos_server() as server:
        server.answer = (
            b'HTTP/1.1 200 O\x00K\r\nETag: "a\x00b"\r\nLast-Modified: x\x00\r\n\r\n'
            + OWN_DUMP.read_bytes()
        )
        spec = SourceSpec("nul", server.url())
        report = job.ingest(
            any_store,
            [spec],
            job.Reading(now=NOW, zone=ZoneInfo("UTC"), limits=SourceLimits(), fetch=QUICK),
        )
    assert report.sources[0].ok and report.sources[0].new > 0
    assert any_store.source_validators("nul") == (None, None)


# -- the internal-address check, in every IPv6 spelling of an IPv4 address


@pytest.mark.parametrize(
    "address",
    [
        "::127.0.0.1",
        "::10.0.0.1",
        "64:ff9b::7f00:1",
        "64:ff9b::a9fe:a9fe",
        "64:ff9b:1::a00:1",
        "2002:7f00:1::",
        "2002:a9fe:a9fe::1",
        "fec0::1",
        "::ffff:169.254.169.254",
        "2001:0:4136:e378:8000:63bf:80ff:fffe",
    ],
)
def test_ipv6_forms_of_internal_addresses_are_internal(address: str) -> None:
    assert is_private(ipaddress.ip_address(address))


@pytest.mark.parametrize("address", ["64:ff9b::808:808", "2002:808:808::1", "2606:4700::1111"])
def test_ipv6_forms_of_public_addresses_are_public(address: str) -> None:
    assert not is_private(ipaddress.ip_address(address))


@given(st.ip_addresses(v=4))
def test_every_embedding_of_an_ipv4_address_is_classified_as_it(v4: ipaddress.IPv4Address) -> None:
    inner = is_private(v4)
    n = int(v4)
    for form in (0xFFFF << 32 | n, 0x0064FF9B << 96 | n, 0x2002 << 112 | n << 80):
        assert is_private(ipaddress.IPv6Address(form)) or not inner


# -- files


def test_a_fifo_is_refused_without_hanging(tmp_path: Path) -> None:
    fifo = tmp_path / "feed"
    os.mkfifo(fifo)
    with pytest.raises(SourceError, match="not a regular file"):
        retrieve(str(fifo), policy=QUICK)


def test_a_device_is_refused_and_the_cap_counts_bytes_read(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="not a regular file"):
        retrieve("/dev/zero", policy=QUICK)
    big = tmp_path / "big.txt"
    big.write_bytes(b"x" * 2000)
    with pytest.raises(SourceError, match="over the 1,000-byte limit"):
        retrieve(str(big), policy=FetchPolicy(max_bytes=1000))


# -- items


def _parse(data: bytes, kind: str | None = None) -> tuple[int, tuple[str, ...]]:
    parsed = parse_source(data, name="s", today=TODAY, kind=kind)
    return len(parsed.entries), parsed.warnings


def test_an_atom_entry_dated_year_0_costs_only_its_date() -> None:
    entry = (
        "<entry><title>{t}</title><id>urn:{t}</id><updated>{d}</updated>"
        "<summary>x</summary></entry>"
    )
    feed = (
        '<feed xmlns="http://www.w3.org/2005/Atom"><title>t</title>'
        + entry.format(t="A", d="0000-01-01T00:00:00Z")
        + entry.format(t="B", d="2026-11-27T00:00:00Z")
        + "</feed>"
    )
    assert _parse(feed.encode())[0] == 2


def test_a_5000_digit_number_costs_only_its_item() -> None:
    items = [
        {"paper": {"id": "2611.00001", "title": "Good", "upvotes": 3}},
        {"paper": {"id": "2611.00002", "title": "Huge", "upvotes": 7}},
    ]
    text = json.dumps(items).replace('"upvotes": 7', '"upvotes": ' + "9" * 5000)
    count, _ = _parse(text.encode(), "hf-json")
    assert count == 2  # the count is dropped, the paper kept


def test_a_deeply_nested_json_feed_item_costs_only_itself() -> None:
    deep = "[" * 100_000 + "]" * 100_000
    head = '{"version": "https://jsonfeed.org/version/1.1", "title": "t", "items": ['
    text = head + '{"id": "1", "title": "Good"}, {"id": "2", "title": "Deep", "x": ' + deep + "}]}"
    count, warnings = _parse(text.encode(), "json-feed")
    assert count == 1 and "nested too deeply" in warnings[0]


def test_two_bad_bytes_cost_one_entry_of_a_dump() -> None:
    papers = [f"Paper number {n}\n\nAbstract of paper {n}." for n in range(5000)]
    papers[2499] = "Paper \xff\xfe broken\n\nAbstract."
    data = ("Daily Papers\n\nNov 27\n\n" + "\n\n".join(papers)).encode("utf-8", "surrogateescape")
    data = data.replace("\xff\xfe".encode(), b"\xff\xfe")
    count, warnings = _parse(data, "dump")
    assert count == 4999 and any("not UTF-8" in w for w in warnings)


def test_a_date_line_that_is_no_date_is_not_a_paper() -> None:
    count, warnings = _parse(b"Daily Papers\n\nFeb 30\n\nA real title\n\nIts abstract.\n", "dump")
    assert count == 1 and any("not a real date" in w for w in warnings)
