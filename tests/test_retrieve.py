"""Fetching against real misbehaving servers on loopback: deadlines, redirects, 304, gzip,
retries, and the stop that SIGTERM sets."""

from __future__ import annotations

import gzip
import ipaddress
import threading
import time
import zlib
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from digest.app import job
from digest.config import SourceSpec
from digest.errors import SourceError
from digest.ingest import FetchPolicy, SourceLimits, Validators, retrieve
from digest.ingest.retrieve import is_private
from digest.store import Store

from .conftest import ARXIV_RSS, JSON_FEED, NOW
from .http_server import http_site, trickle

FEED = ARXIV_RSS.read_bytes()
QUICK = FetchPolicy(timeout=2.0, retries=0, contact="https://digest.example.org")


def fetch(url: str, **kw: object) -> bytes | None:
    policy = kw.pop("policy", QUICK)
    return retrieve(url, policy=policy, **kw).data  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("address", "private"),
    [
        ("127.0.0.1", True),
        ("10.1.2.3", True),
        ("172.16.0.1", True),
        ("192.168.1.1", True),
        ("169.254.169.254", True),
        ("100.64.0.1", True),
        ("0.0.0.0", True),
        ("::1", True),
        ("fd00::1", True),
        ("fe80::1", True),
        ("::ffff:127.0.0.1", True),
        ("224.0.0.1", True),
        ("8.8.8.8", False),
        ("2606:4700::1111", False),
        ("::ffff:1.1.1.1", False),
    ],
)
def test_the_address_classifier(address: str, private: bool) -> None:
    assert is_private(ipaddress.ip_address(address)) is private


def test_a_trickling_server_is_cut_at_the_deadline_for_the_whole_fetch() -> None:
    with http_site() as site:
        site.routes["/slow"] = lambda _h: (200, {}, trickle(FEED, 0.5))
        started = time.monotonic()
        with pytest.raises(SourceError, match="within the fetch deadline"):
            fetch(site.url("/slow"))
        assert time.monotonic() - started < 4  # 2 s allowed, not one byte every 0.5 s for minutes


def test_a_stop_ends_a_fetch_in_progress() -> None:
    stop = threading.Event()
    with http_site() as site:

        def slow(_headers: dict[str, str]):  # type: ignore[no-untyped-def]
            stop.set()  # SIGTERM arrives while the server trickles
            return 200, {}, trickle(FEED, 0.5)

        site.routes["/slow"] = slow
        started = time.monotonic()
        with pytest.raises(SourceError, match="stopped"):
            fetch(site.url("/slow"), policy=FetchPolicy(timeout=60, retries=0), stop=stop)
        assert time.monotonic() - started < 5


def test_redirects_are_followed_up_to_five_times_and_only_to_http() -> None:
    with http_site() as site:
        for hop in range(7):
            site.routes[f"/r{hop}"] = lambda _h, n=hop: (302, {"Location": f"/r{n + 1}"}, iter([]))
        site.serve("/r7", FEED)
        site.routes["/start"] = lambda _h: (301, {"Location": "/r3"}, iter([]))
        assert fetch(site.url("/start")) == FEED  # five hops: fine
        with pytest.raises(SourceError, match="more than 5 redirects"):
            fetch(site.url("/r0"))
        site.routes["/ftp"] = lambda _h: (302, {"Location": "ftp://example.org/x"}, iter([]))
        with pytest.raises(SourceError, match="http\\(s\\) only"):
            fetch(site.url("/ftp"))


def test_a_redirect_from_a_public_address_to_a_private_one_is_refused() -> None:
    # On loopback, say 127.0.0.2 is private and 127.0.0.1 public.
    policy = FetchPolicy(
        timeout=2, retries=0, private_networks=(ipaddress.ip_network("127.0.0.2/32"),)
    )
    with http_site("127.0.0.2") as internal, http_site() as public:
        internal.serve("/latest/meta-data/", b"secret-role-credentials")
        public.routes["/feed"] = lambda _h: (
            302,
            {"Location": internal.url("/latest/meta-data/")},
            iter([]),
        )
        with pytest.raises(SourceError, match="refused a redirect from a public address"):
            fetch(public.url("/feed"), policy=policy)
        assert internal.requests == []  # never even asked
        # A source the operator configured on a private address is theirs to use.
        assert (
            fetch(internal.url("/latest/meta-data/"), policy=policy) == b"secret-role-credentials"
        )


def test_conditional_get_sends_the_validators_and_a_304_is_unchanged() -> None:
    with http_site() as site:

        def feed(headers: dict[str, str]):  # type: ignore[no-untyped-def]
            if headers.get("if-none-match") == '"v1"':
                return 304, {}, iter([])
            return (
                200,
                {"ETag": '"v1"', "Last-Modified": "Fri, 27 Nov 2026 05:00:00 GMT"},
                iter([FEED]),
            )

        site.routes["/feed"] = feed
        first = retrieve(site.url("/feed"), policy=QUICK)
        assert first.data == FEED
        assert first.validators == Validators('"v1"', "Fri, 27 Nov 2026 05:00:00 GMT")
        again = retrieve(site.url("/feed"), policy=QUICK, validators=first.validators)
        assert again.data is None
        _, headers = site.requests[-1]
        assert headers["if-modified-since"] == "Fri, 27 Nov 2026 05:00:00 GMT"
        assert "gzip" in headers["accept-encoding"]
        assert headers["user-agent"].startswith("digest/")
        assert "+https://digest.example.org" in headers["user-agent"]


def test_gzip_and_deflate_are_read_and_a_decompression_bomb_is_refused() -> None:
    with http_site() as site:
        site.serve("/gz", gzip.compress(FEED), Content_Encoding="gzip")
        site.serve("/zlib", zlib.compress(FEED), Content_Encoding="deflate")
        raw = zlib.compressobj(wbits=-15)
        site.serve("/raw", raw.compress(FEED) + raw.flush(), Content_Encoding="deflate")
        for path in ("/gz", "/zlib", "/raw"):
            assert fetch(site.url(path)) == FEED
        site.serve("/bomb", gzip.compress(b"\0" * 50_000_000), Content_Encoding="gzip")
        with pytest.raises(SourceError, match="over the 1,000,000-byte limit"):
            fetch(site.url("/bomb"), policy=FetchPolicy(timeout=5, retries=0, max_bytes=1_000_000))


def test_5xx_is_retried_with_retry_after_honoured_up_to_a_bound() -> None:
    answers = iter([(503, {"Retry-After": "0"}), (500, {}), (200, {})])
    with http_site() as site:

        def flaky(_headers: dict[str, str]):  # type: ignore[no-untyped-def]
            status, extra = next(answers)
            return status, extra, iter([FEED if status == 200 else b"busy"])

        site.routes["/feed"] = flaky
        policy = FetchPolicy(timeout=2, retries=2, max_retry_after=0.01)
        assert fetch(site.url("/feed"), policy=policy) == FEED
        assert len(site.requests) == 3
        site.routes["/down"] = lambda _h: (503, {"Retry-After": "3600"}, iter([b"down"]))
        started = time.monotonic()
        with pytest.raises(SourceError, match="HTTP 503 .* \\(after 3 tries\\)"):
            fetch(site.url("/down"), policy=policy)
        assert time.monotonic() - started < 3  # an hour's Retry-After is capped


def test_a_missing_file_is_named_with_its_path(tmp_path: Path) -> None:
    missing = tmp_path / "nope.xml"
    with pytest.raises(SourceError, match=f"^missing: no such file: {missing}$"):
        retrieve(str(missing), policy=QUICK, name="missing")


# -- through ingest: real feeds served from loopback, stored in a real database


def _ingest(store: Store, *specs: SourceSpec):  # type: ignore[no-untyped-def]
    return job.ingest(
        store,
        list(specs),
        job.Reading(now=NOW, zone=ZoneInfo("UTC"), limits=SourceLimits(), fetch=QUICK),
    )


def test_a_304_reports_the_source_unchanged_and_parses_nothing(any_store: Store) -> None:
    with http_site() as site:

        def feed(headers: dict[str, str]):  # type: ignore[no-untyped-def]
            if headers.get("if-none-match") == '"v1"':
                return 304, {}, iter([])
            return 200, {"ETag": '"v1"'}, iter([FEED])

        site.routes["/rss"] = feed
        spec = SourceSpec("arxiv", site.url("/rss"))
        first = _ingest(any_store, spec).sources[0]
        second = _ingest(any_store, spec).sources[0]
    assert (first.new, first.unchanged) == (2, False)
    assert (second.unchanged, second.read, second.ok) == (True, 0, True)
    assert any_store.source_validators("arxiv") == ('"v1"', None)


@pytest.mark.parametrize("codec", ["utf-16", "utf-16-be", "utf-32"])
def test_utf16_and_utf32_feeds_with_a_bom_are_read(store: Store, codec: str) -> None:
    text = FEED.decode("utf-8").replace("encoding='UTF-8'", f"encoding='{codec.upper()}'")
    data = text.encode(codec)
    if codec == "utf-16-be":
        data = b"\xfe\xff" + data
    with http_site() as site:
        site.serve("/rss", data)
        report = _ingest(store, SourceSpec("wide", site.url("/rss"))).sources[0]
    assert (report.format, report.new, report.error) == ("feed", 2, None)


def test_a_namespace_prefixed_root_and_json_feed_are_read(store: Store) -> None:
    atom = (
        b'<?xml version="1.0"?><a:feed xmlns:a="http://www.w3.org/2005/Atom"><a:title>Lab</a:title>'
        b"<a:entry><a:id>urn:x:1</a:id><a:title>Sparse Mixtures for Tiny Robots</a:title>"
        b"<a:summary>We make robots small.</a:summary></a:entry></a:feed>"
    )
    with http_site() as site:
        site.serve("/atom", atom)
        site.serve("/feed.json", JSON_FEED.read_bytes(), Content_Type="application/feed+json")
        report = _ingest(
            store, SourceSpec("atom", site.url("/atom")), SourceSpec("lab", site.url("/feed.json"))
        )
    atom_report, lab = report.sources
    assert (atom_report.format, atom_report.new) == ("feed", 1)
    assert (lab.format, lab.new, lab.error) == ("json-feed", 3, None)
    titles = {s.entry.title: s.entry for s in store.list_entries()}
    notes = titles["Notes from the Winter Reading Group on Sparse Attention"]
    assert notes.abstract == "We read four papers on sparse attention.\n\nSlides are up."
    frozen = titles[
        "A Frozen Encoder Is a Compatible Encoder: Stable Embeddings Across Model Updates"
    ]
    assert frozen.arxiv_id == "2611.20106" and frozen.authors[0] == "Niccolò Tavernari"


def test_a_format_given_in_the_config_skips_detection(store: Store, tmp_path: Path) -> None:
    dump = tmp_path / "day.txt"
    dump.write_text("<b>Bold Title Paper</b>\n\nAn abstract that looks like markup.\n")
    detected = _ingest(store, SourceSpec("auto", str(dump))).sources[0]
    assert detected.error is not None and "neither RSS nor Atom" in detected.error
    given = _ingest(store, SourceSpec("given", str(dump), format="dump")).sources[0]
    assert (given.format, given.new) == ("dump", 1)
