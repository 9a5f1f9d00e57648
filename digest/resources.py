"""Locate the files shipped beside the package: templates, the default config, examples.

In a checkout they sit at the top of the repository; a wheel carries them in
``digest/_resources`` (see pyproject's force-include).
"""

from __future__ import annotations

from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent


def resource_path(*parts: str) -> Path:
    """Return the path of a shipped resource, e.g. ``resource_path("templates")``."""
    packaged = _PACKAGE / "_resources"
    root = packaged if packaged.is_dir() else _PACKAGE.parent
    return root.joinpath(*parts)
