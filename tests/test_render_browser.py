"""Each theme in real headless Chromium: no horizontal scroll, readable contrast."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from digest.models import Topic
from tools.browser import CONTRAST_SCRIPT, browser, chromium_available

from .test_render import render_topics

pytestmark = pytest.mark.skipif(
    not chromium_available(),
    reason="headless Chromium not installed (apt-get install chromium; .ci/run does it)",
)


@pytest.fixture(scope="module")
def chromium() -> Iterator[Any]:
    with browser() as launched:
        yield launched


@pytest.mark.parametrize("theme", ["light", "dark", "compact"])
@pytest.mark.parametrize("width", [375, 800])
@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_theme_fits_the_screen_and_is_readable(
    chromium: Any, sample_stored: Any, tmp_path: Path, theme: str, width: int, scheme: str
) -> None:
    email = render_topics(
        sample_stored, [Topic("title:fairness", "Fairness"), Topic("rlhf")], theme
    )
    page_file = tmp_path / "email.html"
    page_file.write_text(email.html, encoding="utf-8")
    page = chromium.new_page(viewport={"width": width, "height": 900}, color_scheme=scheme)
    try:
        page.goto(page_file.as_uri())
        scroll_width = page.evaluate("document.documentElement.scrollWidth")
        assert scroll_width <= width, f"{theme} scrolls sideways at {width}px ({scroll_width}px)"
        checked = page.evaluate(CONTRAST_SCRIPT)
        assert len(checked) > 10
        unreadable = [c for c in checked if c["ratio"] < c["needed"]]
        assert not unreadable, unreadable[:5]
        if scheme == "dark" or theme == "dark":
            background = page.evaluate("getComputedStyle(document.body).backgroundColor")
            assert background in ("rgb(1, 4, 9)",), background
    finally:
        page.close()


@pytest.mark.parametrize("theme", ["light", "dark", "compact"])
def test_readable_where_a_client_drops_media_queries_and_overflow_wrap(
    chromium: Any, sample_stored: Any, tmp_path: Path, theme: str
) -> None:
    """Gmail's mobile web and Outlook for Windows drop <style> (so no @media: no dark
    switch, no phone padding), and Gmail, Apple Mail and Outlook ignore overflow-wrap:
    what they show at 375 px still fits the screen and keeps its contrast."""
    import re

    from digest.models import Entry, StoredEntry

    from .conftest import NOW

    long_word = "Hyper" + "parameter" * 25
    hard = StoredEntry(
        9999, Entry(title=f"{long_word} search", abstract=f"See {long_word}. " * 3), "x", NOW
    )
    email = render_topics([*sample_stored, hard], [Topic("title:fairness"), Topic("hyper*")], theme)
    assert long_word in email.html  # the hard case is there
    html = re.sub(r"(?s)<style[^>]*>.*?</style>", "", email.html)
    html = re.sub(r"overflow-wrap:[^;\"]*;?\s*", "", html)
    page_file = tmp_path / "stripped.html"
    page_file.write_text(html, encoding="utf-8")
    page = chromium.new_page(viewport={"width": 375, "height": 900})
    try:
        page.goto(page_file.as_uri())
        scroll_width = page.evaluate("document.documentElement.scrollWidth")
        assert scroll_width <= 375, f"{theme} scrolls sideways without <style> ({scroll_width}px)"
        checked = page.evaluate(CONTRAST_SCRIPT)
        unreadable = [c for c in checked if c["ratio"] < c["needed"]]
        assert not unreadable, unreadable[:5]
    finally:
        page.close()
