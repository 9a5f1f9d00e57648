"""Render a subscriber's digest: subject, HTML (CSS inlined) and a plain-text twin.

Pure: takes the selection and links, returns strings.  Templates live in
``templates/email`` (Jinja2, autoescaped); a theme is a CSS file in
``templates/email/themes`` plus optional template overrides in a folder of
the same name.

Work that does not depend on the subscriber is done once per edition and
theme and cached: the page shell is rendered and inlined once with slots
for the personal parts, and each paper's card (and its text block) is
rendered and inlined once.  A subscriber's email is then assembled from
those pieces, which keeps premailer out of the per-subscriber loop.
"""

from __future__ import annotations

import hashlib
import re
import tomllib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date
from pathlib import Path

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from markupsafe import Markup, escape

from digest import tokens
from digest.models import StoredEntry
from digest.render.css import available_themes, inline_css, theme_css
from digest.render.encoding import WireSize, short_lines, wire_size
from digest.render.fragments import Block, FeedbackLinks, Shell, block, line_runs
from digest.render.papers import (
    PaperView,
    capitalised,
    edition_language,
    long_date,
    paper_view,
    shorten,
)
from digest.render.texmath import plain_text
from digest.select import Match, Selection

_SLOT = re.compile(r"%%DIGEST_(\w+)%%")


_COLOR_SCHEME = re.compile(r"(?<![-\w])color-scheme:\s*([a-z ]+)")


_FRAGMENT_OPEN = '<table class="fragment-root">'


_FRAGMENT_SPLIT = "<tr><td>%%DIGEST_SPLIT%%</td></tr>"


_FRAGMENT_SPLIT_OUT = re.compile(r"<tr>\s*<td>%%DIGEST_SPLIT%%</td>\s*</tr>")


_SECTION_CACHE_SIZE = 2_000


def _anchor(label: str) -> str:
    """The id of a topic's section, for the contents at the top (the same for a label)."""
    return "topic-" + hashlib.sha1(label.encode(), usedforsecurity=False).hexdigest()[:10]


@dataclass(frozen=True)
class EmailSettings:
    """What the renderer needs from the configuration."""

    newsletter: str
    #: Where the newsletter's public pages are (its archive: the "view in browser" link).
    base_url: str
    #: Both from the settings (``[email]``), which declare their defaults.
    abstract_chars: int
    #: Gmail clips HTML over about 102 KB and hides the footer; stay under it.
    max_html_bytes: int
    lang: str = "en"
    #: "More like this" and "Less like this" on every card.
    feedback_links: bool = False


@dataclass(frozen=True)
class PersonalLinks:
    """The links that are one subscriber's own."""

    unsubscribe_url: str
    preferences_url: str
    #: A paper's feedback page for this reader, by entry id (None: no feedback links).
    feedback_url: Callable[[int], str] | None = None


@dataclass(frozen=True)
class RenderedEmail:
    """A rendered digest: ``shown`` papers are in it, ``cut`` more were left out."""

    subject: str
    html: str
    text: str
    shown: int
    cut: int


@dataclass
class _Theme:
    name: str
    env: Environment
    css: str
    color_scheme: str
    #: The inlined page per edition date, cut where the papers go.
    shells: dict[tuple[date, str | None], Shell] = field(default_factory=dict)
    cards: dict[int, Block] = field(default_factory=dict)
    sections: dict[str, Block] = field(default_factory=dict)
    fragments: dict[str, str] = field(default_factory=dict)
    #: Each paper's block in the text part (paper.txt), by entry id.
    texts: dict[int, str] = field(default_factory=dict)
    subjects: dict[tuple[date, int, bool, str | None], str] = field(default_factory=dict)


class EmailRenderer:
    """Renders digests for one edition; caches per theme the work all subscribers share."""

    def __init__(self, templates_dir: Path, settings: EmailSettings) -> None:
        self.templates_dir = templates_dir
        self.settings = settings
        self.themes = available_themes(templates_dir)
        self._themes: dict[str, _Theme] = {}
        self._capacities: dict[str, int] = {}
        self._papers: dict[int, PaperView] = {}
        self._edition_entries: tuple[StoredEntry, ...] = ()

    def prepare(self, entries: Sequence[StoredEntry]) -> None:
        """Say which entries the coming emails draw from, so that each theme inlines
        all their cards in one premailer pass instead of one pass per card."""
        self._edition_entries = tuple(entries)
        for look in self._themes.values():
            self._inline_cards(look)

    def _inline_cards(self, look: _Theme) -> None:
        missing = [s for s in self._edition_entries if s.id not in look.cards]
        if not missing:
            return
        template = look.env.get_template("card.html")
        cards = [template.render(paper=self._paper(stored)) for stored in missing]
        inlined = self._inline_fragment(look, _FRAGMENT_SPLIT.join(cards))
        pieces = _FRAGMENT_SPLIT_OUT.split(inlined)
        if len(pieces) != len(missing):  # pragma: no cover - premailer reshaped the page
            return
        for stored, piece in zip(missing, pieces, strict=True):
            look.cards[stored.id] = block(piece)

    def render(
        self,
        *,
        edition_date: date,
        selection: Selection,
        links: PersonalLinks,
        theme: str,
        personal: bool = True,
        period: str | None = None,
    ) -> RenderedEmail:
        """Render one subscriber's digest for the edition of ``edition_date``.

        ``personal``: the selection comes from the reader's topics (the subject
        says so).  ``period`` names the days an email of several editions covers
        ("14–20 April"); it links to the whole archive instead of one edition.
        """
        look = self._theme(theme)
        base = self.settings.base_url
        edition_url = f"{base}/archive" if period else tokens.edition_url(base, edition_date)
        total = selection.count + selection.cut
        on_topics = " on your topics" if personal else ""
        count_label = f"{total} new {'paper' if total == 1 else 'papers'}{on_topics}"
        subject = self._subject(look, edition_date, total, personal, period)
        values = self._slot_values(look, subject, count_label, links, selection)
        shell = self._shell(look, edition_date, edition_url, period)
        # The "and N more" block, measured generously.
        fixed = shell.size + wire_size("".join(map(str, values.values())) + "x" * 600)
        feedback = self._feedback(links, edition_url)
        blocks, shown_sections, cut_by_size = self._assemble(
            look, selection, fixed=fixed, feedback=feedback
        )
        shown = sum(len(papers) for _, papers in shown_sections)
        more = selection.cut + cut_by_size
        if not shown:
            blocks = [look.env.get_template("empty.html").render(edition_url=edition_url)]
        values["more"] = self._more(look, more, edition_url, personal)
        text = look.env.get_template("digest.txt").render(
            newsletter=self.settings.newsletter,
            date_label=capitalised(period) if period else long_date(edition_date),
            count_label=count_label,
            sections=self._text_sections(look, shown_sections, feedback),
            more=more,
            on_topics=on_topics,
            edition_url=edition_url,
            preferences_url=links.preferences_url,
            unsubscribe_url=links.unsubscribe_url,
        )
        html = _filled(shell, blocks, values)
        return RenderedEmail(subject, html, _tidy_text(text), shown=shown, cut=more)

    def _slot_values(
        self,
        look: _Theme,
        subject: str,
        count_label: str,
        links: PersonalLinks,
        selection: Selection,
    ) -> dict[str, object]:
        """What fills the page shell's slots ("more" comes once the cards are cut)."""
        views = [self._paper(m.entry) for s in selection.sections for m in s.matches]
        lang, direction = edition_language(views, self.settings.lang)
        return {
            "subject": escape(subject),
            "preheader": escape(_preheader(selection) or count_label),
            "count": escape(count_label),
            "preferences_url": escape(links.preferences_url),
            "unsubscribe_url": escape(links.unsubscribe_url),
            "contents": self._contents(look, selection),
            "lang": lang,
            "dir": direction,
        }

    def _feedback(self, links: PersonalLinks, edition_url: str) -> FeedbackLinks | None:
        """The reader's feedback links, when emails carry them."""
        if not self.settings.feedback_links:
            return None
        return FeedbackLinks(links.feedback_url or (lambda _: edition_url))

    def _contents(self, look: _Theme, selection: Selection) -> Markup:
        """The topics at the top, each with its count and a link to its section (two or
        more topics; one needs no contents)."""
        labelled = [s for s in selection.sections if s.label and s.matches]
        if len(labelled) < 2:
            return Markup("")
        rows = (
            self._slotted(
                look,
                "contents.html",
                anchor="#" + _anchor(s.label),
                label=s.label,
                count=f"{len(s.matches)} {'paper' if len(s.matches) == 1 else 'papers'}",
            )
            for s in labelled
        )
        return Markup("".join(rows))

    def _more(self, look: _Theme, more: int, edition_url: str, personal: bool) -> Markup:
        """The "and N more" block, or nothing."""
        if not more:
            return Markup("")
        label = f"{more} more {'paper' if more == 1 else 'papers'}"
        return Markup(
            self._slotted(
                look,
                "more.html",
                count_label=label,
                edition_url=edition_url,
                on_topics=" on your topics" if personal else "",
            )
        )

    def _text_sections(
        self,
        look: _Theme,
        shown: list[tuple[str, list[Match]]],
        feedback: FeedbackLinks | None,
    ) -> list[dict[str, object]]:
        def block(match: Match) -> str:
            text = self._paper_text(look, match.entry)
            if feedback is not None:
                text = feedback.fill(self._paper(match.entry).feedback, match.entry.id, text)
            line = match.why_line
            return text + (f"  {line}\n" if line else "")

        return [{"label": label, "papers": [block(m) for m in papers]} for label, papers in shown]

    def notice(
        self,
        *,
        subject: str,
        heading: str,
        paragraphs: list[str],
        action_text: str,
        action_url: str,
        footer: str,
    ) -> RenderedEmail:
        """Render a one-off email (a confirmation link, a reminder) in the default theme."""
        look = self._theme(self.themes[0] if "light" not in self.themes else "light")
        values = {
            "lang": self.settings.lang,
            "newsletter": self.settings.newsletter,
            "subject": subject,
            "heading": heading,
            "paragraphs": paragraphs,
            "action_text": action_text,
            "action_url": action_url,
            "footer": footer,
        }
        html = short_lines(
            inline_css(look.env.get_template("notice.html").render(css=Markup(look.css), **values))
        )
        text = look.env.get_template("notice.txt").render(**values)
        return RenderedEmail(subject=subject, html=html, text=_tidy_text(text), shown=0, cut=0)

    def _assemble(
        self,
        look: _Theme,
        selection: Selection,
        *,
        fixed: WireSize,
        feedback: FeedbackLinks | None,
    ) -> tuple[list[str], list[tuple[str, list[Match]]], int]:
        """Pick the cards that fit in the size budget on the wire (``max_html_bytes``,
        with ``fixed`` taken), best first, in topic order."""
        blocks: list[str] = []
        shown: list[tuple[str, list[Match]]] = []
        cut, budget = 0, self.settings.max_html_bytes
        # Two sums, not WireSize objects: this runs for every card of every email.
        quoted, base64 = fixed.quoted_printable, fixed.base64
        for section in selection.sections:
            header = self._section_html(look, section.label) if section.label else None
            papers: list[Match] = []
            for match in section.matches:
                if cut:
                    cut += 1
                    continue
                card = self._card_html(look, match.entry)
                line = match.why_line
                if line:  # a recommended, followed or exploration card says why it is there
                    why = block(self._slotted(look, "why.html", line=line))
                    card = Block(why.html + card.html, why.size + card.size)
                more_quoted, more_base64 = card.size.quoted_printable, card.size.base64
                if header and not papers:
                    more_quoted += header.size.quoted_printable
                    more_base64 += header.size.base64
                if min(quoted + more_quoted, base64 + more_base64) > budget:
                    cut += 1
                    continue
                if not papers and header:
                    blocks.append(header.html)
                if feedback is None:
                    blocks.append(card.html)
                else:
                    slot = self._paper(match.entry).feedback
                    blocks.append(feedback.fill(slot, match.entry.id, card.html, html=True))
                quoted, base64 = quoted + more_quoted, base64 + more_base64
                papers.append(match)
            if papers:
                shown.append((section.label, papers))
        return blocks, shown, cut

    def _theme(self, name: str) -> _Theme:
        look = self._themes.get(name)
        if look is not None:
            return look
        if name not in self.themes:
            raise ValueError(f"no such theme {name!r} (choose from {', '.join(self.themes)})")
        email_dir = self.templates_dir / "email"
        env = Environment(
            loader=FileSystemLoader([email_dir / "themes" / name, email_dir]),
            autoescape=select_autoescape(enabled_extensions=("html",), default_for_string=True),
            undefined=StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
            keep_trailing_newline=True,
            # One renderer serves one run: no need to stat the templates per email.
            auto_reload=False,
        )
        css = theme_css(email_dir / "themes", name)
        scheme = _COLOR_SCHEME.search(css)
        look = _Theme(name, env, css, scheme.group(1).strip() if scheme else "light")
        self._themes[name] = look
        self._inline_cards(look)
        return look

    def capacity(self, theme: str) -> int:
        """How many times ``max_entries`` a theme carries: a titles-only theme says more
        in its ``theme.toml`` (``papers = 3``), the others carry it once."""
        found = self._capacities.get(theme)
        if found is None:
            settings = self.templates_dir / "email" / "themes" / theme / "theme.toml"
            papers = tomllib.loads(settings.read_text())["papers"] if settings.is_file() else 1
            found = self._capacities[theme] = max(1, min(int(papers), 10))
        return found

    def _shell(
        self, look: _Theme, edition_date: date, edition_url: str, period: str | None
    ) -> Shell:
        """The inlined page, before and after the papers; the papers start a line."""
        shell = look.shells.get((edition_date, period))
        if shell is None:
            page = look.env.get_template("layout.html").render(
                lang=Markup("%%DIGEST_lang%%"),
                dir=Markup("%%DIGEST_dir%%"),
                color_scheme=look.color_scheme,
                css=Markup(look.css),
                newsletter=self.settings.newsletter,
                date_label=capitalised(period) if period else long_date(edition_date),
                edition_url=edition_url,
                slot=lambda name: Markup(f"%%DIGEST_{name}%%"),
            )
            head, _, tail = short_lines(inline_css(page)).partition("%%DIGEST_sections%%")
            head = head if head.endswith("\n") else head + "\n"
            size = wire_size(_SLOT.sub("", head + tail))
            shell = Shell(line_runs(head), line_runs(tail), size)
            look.shells[(edition_date, period)] = shell
        return shell

    def _subject(
        self, look: _Theme, edition_date: date, count: int, personal: bool, period: str | None
    ) -> str:
        key = (edition_date, count, personal, period)
        subject = look.subjects.get(key)
        if subject is None:
            rendered = look.env.get_template("subject.txt").render(
                newsletter=self.settings.newsletter,
                date_short=period or f"{edition_date:%b} {edition_date.day}",
                count=count,
                personal=personal,
            )
            subject = look.subjects[key] = " ".join(rendered.split())
        return subject

    def _paper_text(self, look: _Theme, stored: StoredEntry) -> str:
        text = look.texts.get(stored.id)
        if text is None:
            paper = self._paper(stored)
            text = look.texts[stored.id] = look.env.get_template("paper.txt").render(paper=paper)
        return text

    def _paper(self, stored: StoredEntry) -> PaperView:
        view = self._papers.get(stored.id)
        if view is None:
            view = paper_view(stored, self.settings.abstract_chars)
            if self.settings.feedback_links:
                view = replace(view, feedback=f"%%FEEDBACK_{stored.id}%%")
            self._papers[stored.id] = view
        return view

    def _card_html(self, look: _Theme, stored: StoredEntry) -> Block:
        card = look.cards.get(stored.id)
        if card is None:
            html = look.env.get_template("card.html").render(paper=self._paper(stored))
            card = block(self._inline_fragment(look, html))
            look.cards[stored.id] = card
        return card

    def _section_html(self, look: _Theme, label: str) -> Block:
        header = look.sections.get(label)
        if header is None:
            header = block(self._slotted(look, "section.html", label=label, anchor=_anchor(label)))
            if len(look.sections) >= _SECTION_CACHE_SIZE:
                look.sections.clear()  # labels are free text: keep memory flat
            look.sections[label] = header
        return header

    def _slotted(self, look: _Theme, template: str, **values: str) -> str:
        """Render a small fragment whose values vary per subscriber, inlining it only once.

        The template is rendered and inlined once per theme with slots in
        place of the values, which are then escaped and put in.
        """
        inlined = look.fragments.get(template)
        if inlined is None:
            slots = {name: Markup(f"%%DIGEST_{name}%%") for name in values}
            html = look.env.get_template(template).render(**slots)
            inlined = self._inline_fragment(look, html)
            look.fragments[template] = inlined
        return _SLOT.sub(lambda m: str(escape(values[m.group(1)])), inlined)

    def _inline_fragment(self, look: _Theme, fragment: str) -> str:
        """Inline a table-row fragment with the theme's CSS, as it would be in the page."""
        page = (
            f"<html><head><style>{look.css}</style></head><body>"
            f"{_FRAGMENT_OPEN}{fragment}</table></body></html>"
        )
        inlined = inline_css(page, keep_leftovers=False)
        start = inlined.index(_FRAGMENT_OPEN) + len(_FRAGMENT_OPEN)
        return short_lines(inlined[start : inlined.rindex("</table>")])


def _preheader(selection: Selection) -> str:
    """The line a mail client shows after the subject: the first papers' titles."""
    firsts = [m for s in selection.sections for m in s.matches[:1]]
    seconds = [m for s in selection.sections for m in s.matches[1:3]]
    titles = [plain_text(m.entry.entry.title) for m in [*firsts, *seconds][:3]]
    return shorten(" \u00b7 ".join(titles), 140)


def _filled(shell: Shell, blocks: list[str], values: Mapping[str, object]) -> str:
    """The page: the shell's slots filled with ``values``, the cards between its halves."""

    def filled(run: str) -> str:
        if "%%DIGEST_" not in run:
            return run
        return _SLOT.sub(lambda m: str(values[m[1]]), run)

    return "".join((*map(filled, shell.head), *blocks, *map(filled, shell.tail)))


def _tidy_text(text: str) -> str:
    """Collapse runs of blank lines left by template blocks."""
    while "\n\n\n" in text:
        text = text.replace("\n\n\n", "\n\n")
    return text.strip() + "\n"
