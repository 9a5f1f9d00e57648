"""`make screenshots` keeps working: every theme and page is pictured, at both widths."""

from __future__ import annotations

from pathlib import Path

import pytest

from tools import screenshots
from tools.browser import chromium_available

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not chromium_available(),
        reason="headless Chromium not installed (apt-get install chromium; .ci/run does it)",
    ),
]


def test_make_screenshots_pictures_every_theme_and_page(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(screenshots, "OUT", tmp_path / "shots")
    screenshots.main()
    screenshots.pages()
    pictures = {p.name for p in (tmp_path / "shots").glob("*.png")}
    for theme in ("light", "dark", "compact"):
        for size in ("phone", "desktop"):
            for scheme in ("light", "dark"):
                assert f"email-{theme}-{size}-{scheme}.png" in pictures
    assert any(name.startswith("page-preferences-") for name in pictures)
    for page in ("login", "overview", "subscribers", "subscriber", "editions", "sources"):
        assert f"page-admin-{page}-phone-dark.png" in pictures
