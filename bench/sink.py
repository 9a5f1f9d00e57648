"""A counting SMTP sink (aiosmtpd) run in its own process, for the benchmarks."""

from __future__ import annotations

import collections
import multiprocessing
import multiprocessing.connection
import socket
import threading
import time
from typing import Any

from aiosmtpd.controller import Controller


class _Counter:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.recipients: collections.Counter[str] = collections.Counter()
        self.sizes: list[int] = []
        #: Lines per message: the server's work goes by lines as much as by bytes.
        self.lines: list[int] = []
        #: Wall-clock times of the first and the last message received.
        self.first = self.last = 0.0

    async def handle_EHLO(  # noqa: N802 - aiosmtpd's hook name
        self, server: Any, session: Any, envelope: Any, hostname: str, responses: list[str]
    ) -> list[str]:
        # aiosmtpd reads commands in order, so it takes pipelined ones; like the relays
        # digest meets (Postfix, SES, Mailgun), the sink says so.
        session.host_name = hostname
        return [*responses[:-1], "250-PIPELINING", responses[-1]]

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        now = time.time()
        with self.lock:
            self.first = self.first or now
            self.last = now
            self.sizes.append(len(envelope.original_content))
            self.lines.append(envelope.original_content.count(b"\n"))
            self.recipients.update(envelope.rcpt_tos)
        return "250 OK"


def _serve(port: int, ready: Any, commands: multiprocessing.connection.Connection) -> None:
    counter = _Counter()
    controller = Controller(counter, hostname="127.0.0.1", port=port, data_size_limit=None)
    controller.start()
    ready.set()
    while True:
        command = commands.recv()
        with counter.lock:
            if command == "stats":
                commands.send(
                    {
                        "sizes": list(counter.sizes),
                        "lines": list(counter.lines),
                        "recipients": dict(counter.recipients),
                        "first": counter.first,
                        "last": counter.last,
                    }
                )
            elif command == "reset":
                counter.sizes.clear()
                counter.lines.clear()
                counter.recipients.clear()
                counter.first = counter.last = 0.0
                commands.send("ok")
            else:
                break
    controller.stop()


class Sink:
    """Start with ``with Sink() as sink``; ``sink.port``, ``sink.stats()``, ``sink.reset()``."""

    def __enter__(self) -> Sink:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = int(probe.getsockname()[1])
        context = multiprocessing.get_context("spawn")
        ready = context.Event()
        self._commands, theirs = context.Pipe()
        self._process = context.Process(target=_serve, args=(self.port, ready, theirs), daemon=True)
        self._process.start()
        if not ready.wait(30):
            raise RuntimeError("the SMTP sink did not start")
        return self

    def __exit__(self, *exc: object) -> None:
        self._commands.send("stop")
        self._process.join(10)

    def stats(self) -> dict[str, Any]:
        self._commands.send("stats")
        return dict(self._commands.recv())

    def reset(self) -> None:
        self._commands.send("reset")
        self._commands.recv()
