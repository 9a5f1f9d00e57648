"""Logging for people and for log collectors: one line per event on stderr.

``log_event(logger, "run_finished", sent=12)`` writes
``2026-11-28T07:00:03Z INFO digest.worker run_finished sent=12`` (text) or the
same as one JSON object (``--log-format json``).  Fields whose names look
secret (password, token, secret, key) are never written.  ``peak_rss_kb``
gives the memory figure that run reports carry.
"""

from __future__ import annotations

import json
import logging
import re
import resource
import sys
import time
from typing import Any

from digest.text import printable

_SECRET_WORDS = ("password", "token", "secret", "key")


def log_event(logger: logging.Logger, event: str, level: int = logging.INFO, **fields: Any) -> None:
    """Log one event with key=value fields."""
    logger.log(level, event, extra={"fields": fields})


def _safe(fields: dict[str, Any]) -> dict[str, Any]:
    return {
        key: "[hidden]" if any(word in key.lower() for word in _SECRET_WORDS) else value
        for key, value in fields.items()
    }


def _quoted(value: Any) -> str:
    text = str(value)
    if not text.isprintable():  # a control in a field is shown escaped, never obeyed
        return json.dumps(text)
    if not text or any(c.isspace() or c in '"=' for c in text):
        return json.dumps(text, ensure_ascii=False)
    return text


#: A terminal's colour codes, which some libraries put in their messages (werkzeug).
_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


def _shown(message: str, *, colour: bool) -> str:
    """A message as one printable line; with ``colour``, colour codes are kept."""
    if not colour:
        return printable(_ANSI.sub("", message), 10_000)
    pieces = _ANSI.split(message)
    codes = _ANSI.findall(message) + [""]
    return "".join(printable(p, 10_000) + c for p, c in zip(pieces, codes, strict=True))


class KeyValueFormatter(logging.Formatter):
    """``time LEVEL logger message key=value ...``; colour codes only on a terminal."""

    converter = staticmethod(time.gmtime)

    def __init__(self, *, colour: bool = False) -> None:
        super().__init__()
        self.colour = colour

    def format(self, record: logging.LogRecord) -> str:
        stamp = self.formatTime(record, "%Y-%m-%dT%H:%M:%SZ")
        fields = _safe(getattr(record, "fields", {}))
        pairs = " ".join(f"{key}={_quoted(value)}" for key, value in fields.items())
        message = _shown(record.getMessage(), colour=self.colour)
        line = f"{stamp} {record.levelname} {record.name} {message}"
        line = f"{line} {pairs}" if pairs else line
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line


class JsonFormatter(logging.Formatter):
    """One JSON object per line."""

    converter = staticmethod(time.gmtime)

    def format(self, record: logging.LogRecord) -> str:
        payload = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%SZ"),
            "level": record.levelname,
            "logger": record.name,
            "event": _shown(record.getMessage(), colour=False),
        } | _safe(getattr(record, "fields", {}))
        if record.exc_info:
            payload["traceback"] = self.formatException(record.exc_info)
        return json.dumps(payload, ensure_ascii=False, default=str)


def configure_logging(*, level: int, json_format: bool) -> None:
    """Send digest's logs to stderr, one line per event."""
    handler = logging.StreamHandler(sys.stderr)
    colour = sys.stderr.isatty()
    handler.setFormatter(JsonFormatter() if json_format else KeyValueFormatter(colour=colour))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # Libraries stay quiet unless asked: their chatter is not our events.
    for name in ("alembic", "apscheduler", "premailer", "cssutils"):
        logging.getLogger(name).setLevel(max(level, logging.WARNING))


def peak_rss_kb() -> int:
    """This process's peak resident memory in KiB, counted from its own start.

    Linux's ``ru_maxrss`` also counts the parent's memory at the fork before
    the exec, so a small process started by a big one would look big.
    """
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak // 1024 if sys.platform == "darwin" else peak
