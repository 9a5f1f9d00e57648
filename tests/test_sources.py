"""Parsing every supported source format, from real samples and hostile input."""

from __future__ import annotations

import json
from datetime import date

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from digest.errors import SourceError
from digest.ingest import FetchPolicy, SourceLimits, detect_format, parse_source, read_source
from digest.ingest.sources.dump import parse_date_line, parse_dump

from .conftest import ARXIV_ATOM, ARXIV_RSS, HF_JSON, OWN_DUMP, SAMPLE_DUMP, TODAY

ABSTRACT = (
    "We study a problem that matters. Our method improves results a lot. "
    "Experiments on three benchmarks confirm it."
)


def parse(data: bytes | str, **kwargs: object):  # type: ignore[no-untyped-def]
    raw = data.encode("utf-8") if isinstance(data, str) else data
    return parse_source(raw, name="test", today=kwargs.pop("today", TODAY), **kwargs)  # type: ignore[arg-type]


# -- page dumps


def test_the_sample_dump_has_73_entries_dated_from_its_date_line() -> None:
    parsed = read_source(str(SAMPLE_DUMP), today=TODAY)
    assert parsed.format == "dump"
    assert len(parsed.entries) == 73
    assert parsed.warnings == ()
    first = parsed.entries[0]
    assert first.title.startswith("Learning a Room with the Occ-SDF Hybrid")
    assert first.abstract.startswith("Implicit neural rendering")
    assert {e.published for e in parsed.entries} == {date(2026, 3, 21)}


def test_a_year_less_date_is_the_latest_not_after_today() -> None:
    assert parse_date_line("Mar 21", date(2026, 3, 21)) == date(2026, 3, 21)
    assert parse_date_line("Mar 21", date(2026, 3, 20)) == date(2025, 3, 21)
    assert parse_date_line("Dec 31", date(2027, 1, 1)) == date(2026, 12, 31)
    assert parse_date_line("Feb 29", date(2026, 11, 28)) == date(2024, 2, 29)
    assert parse_date_line("March 21, 2024", TODAY) == date(2024, 3, 21)
    assert parse_date_line("Subscribe", TODAY) is None


def test_date_override_wins_over_the_date_line() -> None:
    parsed = parse(SAMPLE_DUMP.read_bytes(), edition_date=date(2026, 1, 2))
    assert {e.published for e in parsed.entries} == {date(2026, 1, 2)}


def test_crlf_bom_extra_blank_lines_and_wrapped_titles_are_accepted() -> None:
    text = (
        "\ufeffnew\r\n\r\nSubscribe\r\n\r\nMar 21\r\n\r\n   \r\n\r\n"
        "A Title Wrapped\r\nOver Two Lines\r\n\r\n \t \r\n"
        f"{ABSTRACT}\r\n\r\n\r\nSecond Paper\r\n\r\n{ABSTRACT}"
    )
    parsed = parse(text)
    assert [e.title for e in parsed.entries] == ["A Title Wrapped Over Two Lines", "Second Paper"]
    assert parsed.warnings == ()


def test_a_paragraph_that_cannot_be_a_title_continues_the_abstract() -> None:
    text = f"Mar 21\n\nOne Paper\n\n{ABSTRACT}\n\n{ABSTRACT}\n\nTwo Paper\n\n{ABSTRACT}"
    parsed = parse(text)
    assert [e.title for e in parsed.entries] == ["One Paper", "Two Paper"]
    assert parsed.entries[0].abstract == f"{ABSTRACT}\n\n{ABSTRACT}"
    assert parsed.warnings == (
        "line 7: paragraph cannot be a title; joined to the abstract of 'One Paper'",
    )


def test_a_trailing_title_without_abstract_is_skipped_naming_its_line() -> None:
    parsed = parse(f"Mar 21\n\nOne Paper\n\n{ABSTRACT}\n\nLonely Title")
    assert [e.title for e in parsed.entries] == ["One Paper"]
    assert parsed.warnings == ("line 7: title 'Lonely Title' has no abstract; skipped",)


def test_no_date_line_means_the_ingest_date_with_a_warning() -> None:
    parsed = parse(f"One Paper\n\n{ABSTRACT}")
    assert parsed.entries[0].published == TODAY
    assert parsed.warnings == ("no date line; using the ingest date 2026-11-28",)


def test_a_header_only_page_is_an_empty_day_not_an_error() -> None:
    parsed = parse("new\n\nGet trending papers in your email inbox!\n\nSubscribe\n\nMar 21")
    assert parsed.entries == ()
    assert "empty day" in parsed.warnings[0]


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "the source is empty"),
        (b"  \n\n \r\n", "the source is empty"),
        (b"\x00\x01\x02\xff binary", "binary data"),
        (b"\xff\xfe\xfa not utf-8 at all", "not UTF-8"),
        (b"<html><body>hi</body></html>", "neither RSS nor Atom"),
        (b"{not json", "invalid JSON"),
        (b'{"papers": 1}', "not a list of daily papers"),
    ],
)
def test_unreadable_sources_fail_with_a_clear_message(data: bytes, message: str) -> None:
    with pytest.raises(SourceError) as raised:
        parse(data)
    assert message in str(raised.value)
    assert str(raised.value).startswith("test: ")


@settings(max_examples=200)
@given(st.text(max_size=2000))
def test_any_text_parses_or_fails_cleanly(text: str) -> None:
    try:
        parsed = parse(text)
    except SourceError:
        return
    for entry in parsed.entries:
        assert entry.title.strip()
        assert "\n" not in entry.title


@settings(max_examples=100)
@given(
    st.lists(
        st.tuples(
            st.text(alphabet="abcdefghij ,:-ABC", min_size=3, max_size=80).filter(
                lambda t: t.strip()
            ),
            st.text(alphabet="abcdefgh XY.,", min_size=1, max_size=400).filter(lambda t: t.strip()),
        ),
        min_size=1,
        max_size=20,
    )
)
def test_generated_dumps_round_trip(pairs: list[tuple[str, str]]) -> None:
    body = "\n\n".join(f"{title}\n\n{abstract}" for title, abstract in pairs)
    parsed = parse("new\n\nSubscribe\n\nMar 21\n\n" + body)
    assert [(e.title, e.abstract) for e in parsed.entries] == [
        (" ".join(t.split()), " ".join(a.split())) for t, a in pairs
    ]


# -- feeds


def test_arxiv_rss_keeps_new_papers_and_skips_re_announcements() -> None:
    parsed = read_source(str(ARXIV_RSS), today=TODAY)
    assert parsed.format == "feed"
    assert parsed.skipped == 3  # cross, replace and replace-cross
    assert [e.arxiv_id for e in parsed.entries] == ["2611.20311", "2611.20103"]
    first = parsed.entries[0]
    assert first.title == "Contracted Drift: Per-Layer Step Sizes for Local Learning at Depth"
    assert first.abstract.startswith("Local learning trains each layer")
    assert "Announce Type" not in first.abstract
    assert first.url == "https://arxiv.org/abs/2611.20311"
    assert first.pdf_url == "https://arxiv.org/pdf/2611.20311"
    assert first.authors == ("Ottilie Marchetti-Rowe",)
    assert first.categories == ("cs.LG",)
    assert parsed.entries[1].authors == (
        "Rhea Vantongeren",
        "Marcus Iwu",
        "Tessaly Brandt-Ocampo",
    )
    assert all("," not in a for e in parsed.entries for a in e.authors)
    assert first.published == date(2026, 11, 27)


def test_arxiv_api_atom_entries_have_ids_links_and_authors() -> None:
    parsed = read_source(str(ARXIV_ATOM), today=TODAY)
    assert len(parsed.entries) == 5
    hinge = parsed.entries[0]
    assert hinge.title == "Hinge: Dexterous Manipulation of Folding Tools"
    assert hinge.arxiv_id == "2611.19877"
    assert hinge.pdf_url == "https://arxiv.org/pdf/2611.19877v1"
    assert hinge.authors == (
        "Mireille Okafor",
        "Tomás Lindqvist",
        "Hye-jin Barros",
        "C. Anand Pillai",
    )
    assert "cs.LG" in hinge.categories
    assert "(<1 minute per tool)" in hinge.abstract
    assert hinge.published == date(2026, 11, 24)
    # The older style wraps and indents the title and summary; the entry reads as one line.
    wrapped = parsed.entries[2]
    assert wrapped.title == "Long-Horizon Tool Use with Hierarchical World Models"
    assert wrapped.abstract.startswith(
        "A world model that predicts only the next observation cannot"
    )
    assert "  " not in wrapped.abstract and "\n" not in wrapped.abstract
    assert parsed.entries[3].arxiv_id == "2611.17305"  # the version is dropped from the id


def test_old_style_atom_with_wrapped_title_and_summary_is_collapsed() -> None:
    feed = b"""<?xml version="1.0"?>
<feed xmlns="http://www.w3.org/2005/Atom"><title>arXiv</title>
<entry><id>http://arxiv.org/abs/1706.03762v5</id>
  <title>Attention Is
      All You Need</title>
  <summary>  The dominant sequence
      transduction models.
  </summary></entry></feed>"""
    (entry,) = parse(feed).entries
    assert entry.title == "Attention Is All You Need"
    assert entry.abstract == "The dominant sequence transduction models."
    assert entry.arxiv_id == "1706.03762"


def test_html_in_an_rss_description_becomes_text_and_bad_links_are_dropped() -> None:
    feed = b"""<rss version="2.0"><channel><title>Blog</title>
<item><title>Post &amp; more</title><link>javascript:alert(1)</link>
<description>&lt;p&gt;First &lt;b&gt;bold&lt;/b&gt;.&lt;/p&gt;
&lt;p&gt;Second.&lt;/p&gt;</description>
</item></channel></rss>"""
    (entry,) = parse(feed).entries
    assert entry.title == "Post & more"
    assert entry.abstract == "First bold.\n\nSecond."
    assert entry.url is None


def test_hugging_face_json_keeps_ids_upvotes_authors_and_links() -> None:
    parsed = read_source(str(HF_JSON), today=TODAY)
    assert parsed.format == "hf-json"
    assert len(parsed.entries) == 20
    first = parsed.entries[0]
    assert first.arxiv_id == "2611.20101"
    assert first.authors == ("Mirela Oyelaran-Voss", "Tobiah Quennell", "Saoirse Brandt")
    assert first.upvotes == 0
    assert first.hf_url == "https://huggingface.co/papers/2611.20101"
    assert first.published == date(2026, 11, 25)
    assert max(e.upvotes or 0 for e in parsed.entries) == 25
    # A hidden author is left out; a summary with a newline in it reads as one paragraph.
    assert "Anonymous Reviewer" not in {a for e in parsed.entries for a in e.authors}
    assert all("\n" not in e.abstract for e in parsed.entries)
    rubato = next(e for e in parsed.entries if e.title.startswith("Rubato"))
    assert "performance, and transfers" in rubato.abstract
    # What Hugging Face says beyond the abstract: a TL;DR, the code and its stars, the lab.
    assert first.summary.startswith("Leaderboards rank language models")
    assert all(e.summary for e in parsed.entries)
    assert rubato.code_url == "https://github.com/halvorsen/rubato" and rubato.stars == 18
    coded = [e for e in parsed.entries if e.code_url]
    assert len(coded) == 11 and all(e.stars is not None for e in coded)
    assert {e.organization for e in parsed.entries} >= {"Quennell Lab", "Università di Esempio"}


def test_hugging_face_extras_of_the_wrong_type_are_left_out() -> None:
    item = {
        "paper": {
            "id": "2611.00001",
            "title": "T",
            "ai_summary": ["no"],
            "githubRepo": 7,
            "githubStars": True,
            "organization": "Lab",
        },
        "organization": {"name": "handle-only"},
    }
    (entry,) = parse(json.dumps([item])).entries
    assert (entry.summary, entry.code_url, entry.stars) == ("", None, None)
    assert entry.organization == "handle-only"
    hostile = {
        "paper": {
            "id": "2611.00002",
            "title": "T",
            "githubRepo": "javascript:alert(1)",
            "ai_summary": "line\r\nBcc: x@example.org " + "x" * 5000,
        }
    }
    (entry,) = parse(json.dumps([hostile])).entries
    assert entry.code_url is None
    assert "\n" not in entry.summary and len(entry.summary) <= 600


def test_bad_items_in_hf_json_are_skipped_with_a_warning() -> None:
    data = b'[{"paper": {"id": "2606.00001", "title": "Good", "summary": "S"}}, 3, {"paper": {}}]'
    parsed = parse(data)
    assert [e.title for e in parsed.entries] == ["Good"]
    assert parsed.warnings == ("item 2: not an object; skipped", "item 3: no title; skipped")


def test_the_feed_fixtures_are_what_make_fixtures_writes() -> None:
    from .make_fixtures import FIXTURES

    for path, make in FIXTURES.items():
        assert path.read_text(encoding="utf-8") == make(), (
            f"{path.name} differs from tests/make_fixtures.py; run python tests/make_fixtures.py"
        )


def test_format_is_detected_from_content_not_the_file_name() -> None:
    assert detect_format(HF_JSON.read_bytes()) == "hf-json"
    assert detect_format(ARXIV_RSS.read_bytes()) == "feed"
    assert detect_format(ARXIV_ATOM.read_bytes()) == "feed"
    assert detect_format(SAMPLE_DUMP.read_bytes()) == "dump"
    assert detect_format(OWN_DUMP.read_bytes()) == "dump"


def test_sizes_are_capped() -> None:
    limits = SourceLimits(max_title_chars=20, max_abstract_chars=30, max_authors=2)
    data = (
        b'[{"paper": {"id": "2606.00001", "title": "'
        + b"T" * 50
        + b'", "summary": "'
        + b"word " * 40
        + b'", "authors": [{"name": "a"}, {"name": "b"}, {"name": "c"}]}}]'
    )
    parsed = parse(data, limits=limits)
    (entry,) = parsed.entries
    assert len(entry.title) == 20 and len(entry.abstract) <= 30
    assert entry.authors == ("a", "b")
    assert len(parsed.warnings) == 2


def test_an_oversized_file_is_refused_before_reading(tmp_path) -> None:  # type: ignore[no-untyped-def]
    big = tmp_path / "big.txt"
    big.write_bytes(b"x" * 2000)
    with pytest.raises(SourceError, match="over the 1,000-byte limit"):
        read_source(str(big), today=TODAY, policy=FetchPolicy(max_bytes=1000))


def test_missing_files_and_odd_schemes_name_the_source() -> None:
    with pytest.raises(SourceError, match="^/no/such/file: no such file$"):
        read_source("/no/such/file", today=TODAY)
    with pytest.raises(SourceError, match="unsupported URL scheme 'ftp'"):
        read_source("ftp://example.org/feed", today=TODAY)


def test_dump_parser_is_pure_and_handles_a_title_only_body() -> None:
    parsed = parse_dump("Mar 21\n\nJust A Title", today=TODAY)
    assert parsed.entries == ()
    assert "no abstract" in parsed.warnings[0]
