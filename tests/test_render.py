"""The email: golden files per theme, hostile feed text, Unicode, and the size budget."""

from __future__ import annotations

import os
import re
from datetime import date
from email.header import decode_header, make_header
from email.message import EmailMessage
from email.policy import SMTP
from pathlib import Path

import pytest

from digest.models import Entry, StoredEntry, Topic
from digest.render import EmailRenderer, EmailSettings, PersonalLinks, inline_css, shorten
from digest.resources import resource_path
from digest.select.index import EditionIndex

from .conftest import NOW

GOLDEN = Path(__file__).parent / "golden"
EDITION = date(2026, 3, 21)
LINKS = PersonalLinks(
    unsubscribe_url="https://digest.example.org/unsubscribe/TOKEN",
    preferences_url="https://digest.example.org/preferences/TOKEN",
    feedback_url=lambda entry_id: f"https://digest.example.org/feedback/1.{entry_id}.SIGNED",
)
THEMES = ["light", "dark", "compact"]


def renderer(**overrides: object) -> EmailRenderer:
    settings = EmailSettings(
        newsletter="Daily papers",
        base_url="https://digest.example.org",
        abstract_chars=600,
        max_html_bytes=100_000,
        feedback_links=True,
    )
    for name, value in overrides.items():
        object.__setattr__(settings, name, value)
    return EmailRenderer(resource_path("templates"), settings)


def stored(entries: list[Entry] | tuple[Entry, ...]) -> list[StoredEntry]:
    return [StoredEntry(n + 1, e, "test", NOW) for n, e in enumerate(entries)]


def render_topics(entries: list[StoredEntry], topics: list[Topic], theme: str, **kw: object):  # type: ignore[no-untyped-def]
    with EditionIndex(entries) as index:
        selection = index.select(topics, max_entries=int(kw.pop("max_entries", 30)))  # type: ignore[call-overload]
    return renderer(**kw).render(
        edition_date=EDITION, selection=selection, links=LINKS, theme=theme, personal=bool(topics)
    )


def scrub(text: str) -> str:
    """Remove what may change between runs without changing what a reader sees."""
    return re.sub(r"/(unsubscribe|preferences)/[\w.-]+", r"/\1/TOKEN", text)


@pytest.mark.parametrize("theme", THEMES)
def test_each_theme_matches_its_golden_files(sample_stored: list[StoredEntry], theme: str) -> None:
    topics = [Topic("title:fairness", "Fairness"), Topic("author:quennell OR title:rlhf")]
    email = render_topics(sample_stored, topics, theme)
    for suffix, content in ((".html", email.html), (".txt", email.text)):
        golden = GOLDEN / f"{theme}{suffix}"
        if os.environ.get("DIGEST_REGENERATE_GOLDEN"):
            golden.write_text(scrub(content), encoding="utf-8")
        assert scrub(content) == golden.read_text(encoding="utf-8"), (
            f"{golden} differs; if the change is intended, regenerate with "
            "DIGEST_REGENERATE_GOLDEN=1 make test"
        )


def test_the_email_follows_html_email_practice(sample_stored: list[StoredEntry]) -> None:
    email = render_topics(sample_stored, [Topic("title:fairness", "Fairness")], "light")
    html = email.html
    assert html.startswith("<!DOCTYPE html>")
    assert '<html lang="en" dir="ltr">' in html
    assert html.count('role="presentation"') >= 2
    assert "max-width:600px" in html.replace(" ", "")
    assert 'class="preheader"' in html and "display:none" in html
    assert "Saturday, March 21, 2026" in html and "7 new papers on your topics" in html
    assert ">Fairness</h2>" in html
    assert "https://digest.example.org/unsubscribe/TOKEN" in html
    assert "https://digest.example.org/preferences/TOKEN" in html
    assert "https://digest.example.org/archive/2026-03-21" in html
    # CSS is inlined, and the rules that cannot be stay in a <style> block.
    assert 'class="card-title" dir="auto" style="' in html  # inlined, direction of its own
    assert "@media (prefers-color-scheme: dark)" in html and "!important" in html
    assert email.subject == "Daily papers, Mar 21: 7 new papers on your topics"


def test_cards_carry_authors_links_and_upvotes(sample_stored: list[StoredEntry]) -> None:
    email = render_topics(sample_stored, [Topic("author:quennell")], "light")
    assert "Mirela Oyelaran-Voss, Tobiah Quennell, Saoirse Brandt" in email.html
    assert 'href="https://arxiv.org/pdf/2611.20101"' in email.html
    assert 'href="https://huggingface.co/papers/2611.20101"' in email.html
    assert "&#9650;" in email.html or "\u25b2" in email.html
    assert "  PDF: https://arxiv.org/pdf/2611.20101" in email.text


def test_the_compact_theme_shows_titles_only(sample_stored: list[StoredEntry]) -> None:
    email = render_topics(sample_stored, [Topic("title:fairness")], "compact")
    assert "Distraction is All You Need for Fairness" in email.html
    assert 'class="card-abstract"' not in email.html
    assert "Distraction is All You Need for Fairness" in email.text


HOSTILE = Entry(
    title='<script>alert("x")</script> {{ config }} %s {% raw %} $i$REPO',
    abstract="<img src=x onerror=alert(1)> &amp; <b>bold</b> {{ 7*7 }} %(name)s",
    authors=("<i>Eve</i>",),
    url="javascript:alert(1)",
    pdf_url="data:text/html,<script>alert(1)</script>",
    hf_url="https://huggingface.co/papers/x?a=1&b=<2>",
)


@pytest.mark.parametrize("theme", THEMES)
def test_feed_text_comes_out_as_text_never_markup(theme: str) -> None:
    email = render_topics(stored([HOSTILE]), [], theme)
    assert "<script>" not in email.html and "<img" not in email.html and "<i>Eve" not in email.html
    assert "&lt;script&gt;alert(" in email.html
    assert "{{ config }} %s {% raw %} iREPO" in email.html  # TeX as text, still escaped
    assert "javascript:" not in email.html and "data:text" not in email.html
    if theme != "compact":
        assert "{{ 7*7 }} %(name)s" in email.html and "49" not in email.html
        assert "&amp;b=&lt;2&gt;" in email.html
    assert '<script>alert("x")</script> {{ config }} %s {% raw %} iREPO' in email.text
    assert "javascript:" not in email.text


UNICODE = Entry(
    title="Émoji 🎉 and 汉字 and \u05e9\u05dc\u05d5\u05dd and Cafe\u0301 $\\alpha$",
    abstract="Right-to-left \u0627\u0644\u0639\u0631\u0628\u064a\u0629, NFD e\u0301, emoji 🧪.",
    url="https://arxiv.org/abs/2606.00001",
    arxiv_id="2606.00001",
)


@pytest.mark.parametrize("theme", THEMES)
def test_any_unicode_survives_into_html_text_and_subject(theme: str) -> None:
    email = render_topics(stored([UNICODE]), [Topic("emoji")], theme)
    shown = UNICODE.title.replace("$\\alpha$", "\u03b1")  # TeX as text
    assert shown in email.html and shown in email.text and "alpha" not in email.html
    if theme != "compact":
        assert UNICODE.abstract in email.html
    # The preheader carries the title; the Subject is RFC 2047-encoded by the mailer.
    assert "\U0001f389" in email.html
    message = EmailMessage(policy=SMTP)
    message["Subject"] = email.subject + " " + UNICODE.title
    raw = message.as_bytes()
    assert raw.isascii() and b"=?utf-8?" in raw
    assert str(make_header(decode_header(message["Subject"]))).endswith(UNICODE.title)


def test_abstracts_are_shortened_on_a_word_boundary() -> None:
    text = "one two three four five six seven eight nine ten"
    assert shorten(text, 20) == "one two three four\u2026"
    assert shorten(text, 100) == text
    email = render_topics(
        stored([Entry(title="T", abstract="word " * 200)]), [], "light", abstract_chars=50
    )
    abstract = re.search(r'<p class="card-abstract"[^>]*>([^<]*)</p>', email.html)
    assert abstract and abstract[1].endswith("word word\u2026") and len(abstract[1]) <= 50
    tldr = re.search(r'<p class="card-tldr"[^>]*>([^<]*)</p>', email.html)
    assert tldr and tldr[1].endswith("word\u2026") and len(tldr[1]) <= 140


def test_the_largest_edition_stays_under_the_size_budget(sample_stored: list[StoredEntry]) -> None:
    email = render_topics(sample_stored, [], "light", max_entries=10_000)
    size = len(email.html.encode())
    assert size <= 100_000
    assert email.shown + email.cut == len(sample_stored)
    assert email.cut > 0 and f"And {email.cut} more papers" in email.html
    # The footer with the unsubscribe link is still there.
    assert "https://digest.example.org/unsubscribe/TOKEN" in email.html
    smaller = render_topics(sample_stored, [], "light", max_entries=10_000, max_html_bytes=40_000)
    assert len(smaller.html.encode()) <= 40_000 and smaller.cut > email.cut


def test_an_empty_selection_says_so(sample_stored: list[StoredEntry]) -> None:
    email = render_topics(sample_stored, [Topic("quantum chromodynamics")], "light")
    assert email.shown == 0 and "No new papers on your topics today" in email.html
    assert email.subject == "Daily papers, Mar 21: 0 new papers on your topics"


def test_the_inliner_keeps_media_rules_and_never_fetches() -> None:
    html = (
        '<html><head><link rel="stylesheet" href="http://127.0.0.1:9/x.css">'
        "<style>.a{color:red !important} @media (max-width:600px){.a{color:blue}}</style>"
        '</head><body><p class="a">x</p></body></html>'
    )
    out = inline_css(html)
    assert 'style="color:red !important"' in out
    assert "@media (max-width: 600px)" in out


def test_a_new_theme_is_just_a_css_file(tmp_path: Path) -> None:
    import shutil

    templates = tmp_path / "templates"
    shutil.copytree(resource_path("templates"), templates)
    (templates / "email" / "themes" / "sepia.css").write_text(
        ".body { color-scheme: light; background-color: #f4ecd8; } .card-title { color: #5b4636; }"
    )
    settings = EmailSettings(
        newsletter="Daily papers",
        base_url="https://digest.example.org",
        abstract_chars=600,
        max_html_bytes=100_000,
    )
    custom = EmailRenderer(templates, settings)
    assert "sepia" in custom.themes
    with EditionIndex(stored([UNICODE])) as index:
        email = custom.render(
            edition_date=EDITION,
            selection=index.select([], max_entries=5),
            links=LINKS,
            theme="sepia",
        )
    assert "color:#5b4636" in email.html.replace(" ", "")


def test_a_theme_can_start_from_another_with_import(tmp_path: Path) -> None:
    import shutil

    templates = tmp_path / "templates"
    shutil.copytree(resource_path("templates"), templates)
    themes = templates / "email" / "themes"
    (themes / "sepia.css").write_text('@import "light.css";\n.card-title { color: #5b4636; }\n')
    settings = EmailSettings(
        newsletter="Daily papers",
        base_url="https://digest.example.org",
        abstract_chars=600,
        max_html_bytes=100_000,
    )
    with EditionIndex(stored([UNICODE])) as index:
        everything = index.select([], max_entries=5)
    email = EmailRenderer(templates, settings).render(
        edition_date=EDITION, selection=everything, links=LINKS, theme="sepia"
    )
    inlined = email.html.replace(" ", "")
    assert "color:#5b4636" in inlined  # its own rule wins
    assert "font-weight:600" in inlined  # the rest of light's .card-title stays
    assert "prefers-color-scheme:dark" in inlined  # and light's dark mode
    (themes / "light.css").write_text('@import "sepia.css";\n')
    with pytest.raises(ValueError, match="loop: sepia -> light"):
        EmailRenderer(templates, settings).render(
            edition_date=EDITION, selection=everything, links=LINKS, theme="sepia"
        )


@pytest.mark.parametrize("theme", THEMES)
def test_every_paper_is_linked_and_the_text_part_has_every_link_of_the_html(
    sample_stored: list[StoredEntry], theme: str
) -> None:
    import html as html_module

    email = render_topics(sample_stored, [Topic("title:fairness", "Fair"), Topic("rlhf")], theme)
    cards = email.html.count('class="card"')
    assert cards == email.shown and email.html.count('class="card-link"') == cards
    hrefs = {html_module.unescape(h) for h in re.findall(r'href="([^"]+)"', email.html)}
    missing = {h for h in hrefs if not h.startswith("#") and h not in email.text}
    assert not missing, sorted(missing)[:3]


@pytest.mark.parametrize("theme", THEMES)
@pytest.mark.parametrize(
    "alphabet", ["汉字漢字かなカナ한글", "abcdefghij klmnop"], ids=["cjk", "ascii"]
)
def test_every_theme_stays_under_the_budget_on_the_wire(theme: str, alphabet: str) -> None:
    import email
    import email.policy
    import random

    from digest.deliver.message import Envelope, build_message

    rng = random.Random(7)

    def words(n: int) -> str:
        return "".join(rng.choice(alphabet) for _ in range(n))

    papers = [
        Entry(
            title=words(60),
            abstract=words(900),
            authors=(words(6), words(8)),
            arxiv_id=f"2611.{n:05d}",
        )
        for n in range(90)
    ]
    budget = 40_000
    email_ = render_topics(stored(papers), [], theme, max_html_bytes=budget, max_entries=90)
    envelope = Envelope(
        "Daily",
        "digest@example.org",
        "ada@example.org",
        None,
        "Daily papers",
        "https://x.example/u",
        "u@example.org",
    )
    raw = build_message(email_, envelope, message_id="<m@example.org>", sent_at=NOW)
    message = email.message_from_bytes(raw, policy=email.policy.default)
    html = message.get_body(("html",))
    assert html is not None
    on_the_wire = html.get_payload(decode=False)
    assert isinstance(on_the_wire, str) and len(on_the_wire.encode()) <= budget
    assert email_.shown > 0 and email_.cut > 0  # the budget did cut
    if alphabet.isascii():
        assert html["Content-Transfer-Encoding"] == "quoted-printable"
    else:
        assert html["Content-Transfer-Encoding"] == "base64"


def test_a_card_links_the_code_an_abstract_names() -> None:
    paper = Entry(
        title="Rationales",
        abstract="Code at https://github.com/lab/pref-learn. More text.",
        arxiv_id="2611.00042",
    )
    email = render_topics(stored([paper]), [], "light")
    assert 'href="https://github.com/lab/pref-learn"' in email.html
    assert "Code: https://github.com/lab/pref-learn\n" in email.text


def test_a_card_leads_with_the_sources_tldr_and_shows_code_stars_and_organisation(
    sample_stored: list[StoredEntry],
) -> None:
    email = render_topics(sample_stored, [Topic("title:toolatlas")], "light", abstract_chars=0)
    atlas = next(s.entry for s in sample_stored if s.entry.title.startswith("ToolAtlas"))
    assert atlas.summary and atlas.summary in email.html.replace("&#39;", "'")
    assert 'class="card-abstract"' not in email.html  # abstract_chars = 0: the TL;DR alone
    assert 'href="https://github.com/desrosiers/toolatlas"' in email.html
    assert "&#9733;&nbsp;31" in email.html or "\u2605\xa031" in email.html
    assert "et al. \u00b7 Northwind AI" in email.html
    assert "  Code: https://github.com/desrosiers/toolatlas\n" in email.text
    assert "et al. \u00b7 Northwind AI\n" in email.text


def test_without_a_tldr_from_the_source_the_card_shows_the_abstracts_telling_sentence() -> None:
    paper = Entry(
        title="Sparse routing",
        abstract="Mixture models are popular. We propose sparse routing for experts. It is fast.",
    )
    email = render_topics(stored([paper]), [], "light", abstract_chars=0)
    assert re.search(r'class="card-tldr"[^>]*>We propose sparse routing for experts\.<', email.html)
    assert "  We propose sparse routing for experts.\n" in email.text


@pytest.mark.parametrize(
    ("titles", "lang", "direction"),
    [
        (["מודלים גדולים של שפה", "למידה עמוקה לחיפוש", "LLM ו-RAG במערכות"], "he", "rtl"),
        (["大規模言語モデルの評価", "ニューラル検索の研究", "深層学習による翻訳"], "ja", "ltr"),
        (["대규모 언어 모델", "신경망 검색 연구", "Deep learning"], "ko", "ltr"),
        (["Attention is all you need", "大规模语言模型", "Scaling laws"], "en", "ltr"),
    ],
)
def test_an_edition_in_one_script_says_its_language_and_each_text_its_direction(
    titles: list[str], lang: str, direction: str
) -> None:
    papers = stored([Entry(title=t, abstract=f"{t}. {t}.") for t in titles])
    html = render_topics(papers, [], "light").html
    assert f'<html lang="{lang}" dir="{direction}">' in html
    assert html.count('class="card-title" dir="auto"') == len(titles)
    assert html.count('class="card-abstract" dir="auto"') == len(titles)


#: A paper with everything a source can give a card.
RICH = Entry(
    title="A paper with everything",
    abstract="Words. " * 60,
    authors=("Ada Lovelace", "Alan Turing", "Grace Hopper", "Edsger Dijkstra"),
    arxiv_id="2604.00001",
    url="https://arxiv.org/abs/2604.00001",
    pdf_url="https://arxiv.org/pdf/2604.00001",
    hf_url="https://huggingface.co/papers/2604.00001",
    code_url="https://github.com/example/everything",
    stars=1234,
    upvotes=56,
    organization="Example Lab",
    summary="It has every link a card can show.",
)


@pytest.mark.parametrize("theme", THEMES)
def test_a_rich_card_keeps_every_line_short_enough_to_go_unencoded(theme: str) -> None:
    from digest.render.encoding import transfer_encoded

    html = render_topics(stored([RICH] * 3), [], theme).html
    assert max(len(line.encode()) for line in html.split("\n")) <= 998
    assert transfer_encoded(html, eight_bit=True)[0] == "8bit"  # as it is, where it may
    assert transfer_encoded(html, eight_bit=False)[0] == "quoted-printable"  # never base64
    assert ">More\u00a0like\u00a0this</a>" in html  # one tap target, never broken
    assert "\u00b7 <a" not in html and "</a> \u00b7" not in html  # no dangling separators


@pytest.mark.parametrize("theme", ["light", "dark"])
def test_the_text_part_carries_every_link_of_the_html_part_as_many_times(theme: str) -> None:
    from collections import Counter
    from html import unescape

    plain = Entry(title="A paper no source linked", abstract="Text. " * 10)
    email = render_topics(stored([RICH, plain]), [], theme)
    in_html = Counter(unescape(h) for h in re.findall(r'href="(https?://[^"]+)"', email.html))
    in_text = Counter(re.findall(r"https?://\S+", email.text))
    assert in_html == in_text
