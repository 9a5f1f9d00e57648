"""Fetch the raw bytes of a source from a path or an http(s) URL, with a size cap.

I/O only: no parsing and no product decisions here.
"""

from __future__ import annotations

import urllib.error
import urllib.request
from pathlib import Path

from digest import __version__
from digest.errors import SourceError

_USER_AGENT = f"digest/{__version__} (research digest newsletter)"


def is_url(location: str) -> bool:
    """Tell whether a source location is a URL rather than a file path."""
    return "://" in location


def retrieve(location: str, *, max_bytes: int, timeout: float, name: str | None = None) -> bytes:
    """Return the bytes at ``location``; raise ``SourceError`` naming it on failure."""
    label = name or location
    if is_url(location):
        scheme = location.split("://", 1)[0].lower()
        if scheme not in ("http", "https"):
            raise SourceError(label, f"unsupported URL scheme {scheme!r} (use http or https)")
        return _fetch_url(location, label, max_bytes=max_bytes, timeout=timeout)
    path = Path(location).expanduser()
    try:
        size = path.stat().st_size
        if path.is_dir():
            raise SourceError(label, "is a directory, not a file")
        if size > max_bytes:
            raise SourceError(label, f"file is {size:,} bytes, over the {max_bytes:,}-byte limit")
        return path.read_bytes()
    except FileNotFoundError as e:
        raise SourceError(label, "no such file") from e
    except PermissionError as e:
        raise SourceError(label, "permission denied") from e
    except OSError as e:
        raise SourceError(label, f"cannot read: {e.strerror or e}") from e


def _fetch_url(url: str, label: str, *, max_bytes: int, timeout: float) -> bytes:
    request = urllib.request.Request(url, headers={"User-Agent": _USER_AGENT})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            data: bytes = response.read(max_bytes + 1)
    except urllib.error.HTTPError as e:
        raise SourceError(label, f"HTTP {e.code} {e.reason}") from e
    except urllib.error.URLError as e:
        raise SourceError(label, f"cannot fetch: {e.reason}") from e
    except (TimeoutError, OSError) as e:
        raise SourceError(label, f"cannot fetch: {e}") from e
    if len(data) > max_bytes:
        raise SourceError(label, f"response is over the {max_bytes:,}-byte limit")
    return data
