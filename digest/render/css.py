"""Themes and CSS: which themes there are, a theme's stylesheet, and inlining with premailer."""

from __future__ import annotations

import logging
import re
from pathlib import Path

from digest.resources import resource_path

_IMPORT = re.compile(r"""\s*@import\s+(?:url\()?["']([\w-]+)\.css["']\)?\s*;\s*$""")


def available_themes(templates_dir: Path) -> list[str]:
    """Return the theme names: one CSS file each in templates/email/themes."""
    return sorted(p.stem for p in (templates_dir / "email" / "themes").glob("*.css"))


def shipped_themes() -> list[str]:
    """The themes digest ships: every list of themes (settings, forms, commands) is this."""
    return available_themes(resource_path("templates"))


def inline_css(html: str, *, keep_leftovers: bool = True) -> str:
    """Inline the ``<style>`` rules of a document into style attributes, with premailer.

    No network, ``!important`` kept, and rules that cannot be inlined
    (``@media`` for dark mode and narrow screens) kept in a ``<style>`` block.
    """
    import premailer  # here: a process that only sends never inlines, and it is slow to import

    inlined: str = premailer.Premailer(
        html,
        allow_network=False,
        allow_loading_external_files=False,
        strip_important=False,
        disable_validation=True,
        disable_leftover_css=not keep_leftovers,
        cssutils_logging_level=logging.CRITICAL,
        method="html",
    ).transform(pretty_print=False)
    return inlined


def theme_css(folder: Path, name: str, importing: tuple[str, ...] = ()) -> str:
    """A theme's CSS, each ``@import "other.css";`` line replaced by that theme's CSS.

    A theme can so start from another and override a few rules after it.
    """
    if name in importing:
        raise ValueError(f"themes import each other in a loop: {' -> '.join(importing)}")
    lines = (folder / f"{name}.css").read_text(encoding="utf-8").splitlines(keepends=True)
    return "".join(
        theme_css(folder, found[1], (*importing, name)) if (found := _IMPORT.match(line)) else line
        for line in lines
    )
