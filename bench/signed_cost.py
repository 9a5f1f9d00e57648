"""Benchmark: what signing costs on the wire, now that a signed message goes 7-bit.

A message digest signs (DKIM) is sent in a 7-bit transfer encoding, so that a
relay which converts 8-bit parts for a next hop cannot break its signature
(RFC 6376 5.3); unsigned mail goes 8-bit where every server offers 8BITMIME.
This renders Ada's demo digest in each theme, and an edition in Japanese, and
prints each message's size both ways.

Not a test: run with `make bench`.  The last line is a summary a script can parse.
"""

from __future__ import annotations

from datetime import UTC, date, datetime

from digest.config import load_settings
from digest.deliver.compose import ComposeSettings, make_renderer
from digest.deliver.message import Envelope, build_message
from digest.ingest import read_source
from digest.models import Entry, StoredEntry, Topic
from digest.render import PersonalLinks
from digest.resources import resource_path
from digest.select import EditionIndex

NOW = datetime(2026, 12, 7, 7, tzinfo=UTC)
ENVELOPE = Envelope(
    "Daily papers",
    "digest@example.org",
    "ada@example.org",
    "Ada Lovelace",
    "Daily papers",
    "https://digest.example.org/unsubscribe/x",
    None,
)


def sizes(entries: list[Entry], topics: list[Topic], theme: str) -> tuple[int, int]:
    """The message's bytes unsigned (8-bit parts) and signed (7-bit parts)."""
    settings = load_settings(resource_path("config", "digest.toml"), environ={})
    renderer = make_renderer(ComposeSettings.of(settings).email)
    links = PersonalLinks(
        "https://digest.example.org/unsubscribe/x", "https://digest.example.org/preferences/x"
    )
    stored = [StoredEntry(n, e, "bench", NOW) for n, e in enumerate(entries, 1)]
    with EditionIndex(stored) as index:
        selection = index.select(topics, max_entries=30)
    rendered = renderer.render(
        edition_date=date(2026, 12, 7), selection=selection, links=links, theme=theme
    )
    built = [
        len(
            build_message(
                rendered, ENVELOPE, message_id="<b@example.org>", sent_at=NOW, eight_bit=e
            )
        )
        for e in (True, False)
    ]
    return built[0], built[1]


def main() -> None:
    demo = [
        *read_source(
            str(resource_path("examples", "daily-papers-mar21.txt")), today=NOW.date()
        ).entries,
        *read_source(
            str(resource_path("examples", "featured-papers.json")), today=NOW.date()
        ).entries,
    ]
    ada = [Topic("rlhf OR dpo OR alignment", "Alignment"), Topic("title:fairness", "Fairness")]
    japanese = [
        Entry(
            title=f"大規模言語モデルの評価と改善 第{n}報",
            abstract="大規模言語モデルの振る舞いを評価し、その改善方法を提案する。" * 8,
            summary="言語モデルを評価する新しい方法を提案する。",
        )
        for n in range(30)
    ]
    extra = []
    for label, entries, topics, theme in [
        ("demo light", demo, ada, "light"),
        ("demo dark", demo, ada, "dark"),
        ("demo compact", demo, ada, "compact"),
        ("japanese light", japanese, [], "light"),
    ]:
        unsigned, signed = sizes(entries, topics, theme)
        extra.append(signed / unsigned - 1)
        print(
            f"{label}: {unsigned:,} bytes unsigned (8-bit), {signed:,} signed (7-bit): "
            f"{signed / unsigned - 1:+.1%}"
        )
    print(f"bench signed demo_extra={extra[0]:.3f} japanese_extra={extra[-1]:.3f}")


if __name__ == "__main__":
    main()
