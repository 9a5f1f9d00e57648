"""Rendering: a reader's email (HTML with inlined CSS, and its text twin), and the paper
cards the email, the archive and the feeds share.

Pure: takes the selection and links, returns strings.  ``renderer`` builds
the email, ``papers`` says how one paper is shown (``texmath`` and
``summary`` make its title and TL;DR readable), ``css`` holds the themes,
and ``encoding`` says what each part takes on the wire.
"""

from digest.render.css import available_themes, inline_css, shipped_themes
from digest.render.encoding import transfer_encoded
from digest.render.papers import PaperView, long_date, paper_view, shorten
from digest.render.renderer import EmailRenderer, EmailSettings, PersonalLinks, RenderedEmail

__all__ = [
    "EmailRenderer",
    "EmailSettings",
    "PaperView",
    "PersonalLinks",
    "RenderedEmail",
    "available_themes",
    "shipped_themes",
    "inline_css",
    "long_date",
    "paper_view",
    "shorten",
    "transfer_encoded",
]
