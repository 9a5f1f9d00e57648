"""One log style: every event goes through ``log_event``, its fields kept, and nothing
in a log line can steer a terminal."""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path

from digest.logs import JsonFormatter, KeyValueFormatter, log_event

PACKAGE = Path(__file__).resolve().parent.parent / "digest"


def test_no_call_site_passes_fields_another_way() -> None:
    # ``extra={...}`` without "fields" is dropped by both formatters: only logs.py may use it.
    offenders = [
        f"{path.relative_to(PACKAGE)}:{number}"
        for path in PACKAGE.rglob("*.py")
        if path.name != "logs.py"
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if re.search(r"\bextra\s*=\s*\{", line)
    ]
    assert offenders == [], "use log_event(logger, event, **fields): " + ", ".join(offenders)


def _record(event: str, **fields: object) -> logging.LogRecord:
    captured: list[logging.LogRecord] = []
    logger = logging.getLogger("digest.test_logs")
    handler = logging.Handler()
    handler.emit = captured.append  # type: ignore[method-assign]
    logger.addHandler(handler)
    try:
        log_event(logger, event, logging.WARNING, **fields)
    finally:
        logger.removeHandler(handler)
    return captured[0]


def test_fields_reach_both_formats_and_controls_are_escaped() -> None:
    record = _record("inbound_ignored", kind="unknown", reason="a\x1b]0;title\x07b")
    line = KeyValueFormatter().format(record)
    assert "inbound_ignored" in line and "kind=unknown" in line
    assert "\x1b" not in line and "\x07" not in line
    parsed = json.loads(JsonFormatter().format(record))
    assert parsed["kind"] == "unknown" and parsed["reason"] == "a\x1b]0;title\x07b"
