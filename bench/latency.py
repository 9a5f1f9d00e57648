"""Benchmark: digest across a network, where each round trip costs time.

A proxy of our own (its own process) delays each direction by RTT/2 in front of the
counting sink, and digest is timed against three reference senders that send the same
number of messages of digest's own sizes and line counts over the same number of
connections, opened together:

- lock-step: MAIL, RCPT, DATA and the message, each after the answer to the one before
  (plain smtplib): four round trips a message;
- pipelined: MAIL, RCPT and DATA in one write (RFC 2920), then the message: two;
- one round trip: the next message's MAIL, RCPT and DATA right behind this one's end.

Ratios are digest's messages a second over each reference's, at each RTT; the time to
the first message is from the start of the `digest run` process.  Not a test: run with
`make bench`.  The last line is a summary a script can parse.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import socket
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from delivery import fresh_database, message_of_shape, prepare, run_digest
from sink import Sink


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def _pump(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, delay: float) -> None:
    """Forward what ``reader`` gets to ``writer``, each chunk ``delay`` seconds later, in
    order (a link with that one-way latency and no bandwidth limit)."""
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()

    async def deliver() -> None:
        while True:
            due, data = await queue.get()
            if not data:
                writer.close()
                return
            wait = due - loop.time()
            if wait > 0:
                await asyncio.sleep(wait)
            writer.write(data)
            await writer.drain()

    sending = asyncio.create_task(deliver())
    while True:
        data = await reader.read(65536)
        await queue.put((loop.time() + delay, data))
        if not data:
            break
    await sending


def _proxy(listen: int, target: int, rtt: float, ready: Any) -> None:
    async def connection(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        upstream_reader, upstream_writer = await asyncio.open_connection("127.0.0.1", target)
        for sock in (writer, upstream_writer):
            sock.get_extra_info("socket").setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        await asyncio.gather(
            _pump(reader, upstream_writer, rtt / 2),
            _pump(upstream_reader, writer, rtt / 2),
            return_exceptions=True,
        )

    async def serve() -> None:
        server = await asyncio.start_server(connection, "127.0.0.1", listen, backlog=256)
        ready.set()
        async with server:
            await server.serve_forever()

    asyncio.run(serve())


class Proxy:
    """``with Proxy(target_port, rtt) as port``: a delaying proxy in a process of its own."""

    def __init__(self, target: int, rtt: float) -> None:
        self.target, self.rtt, self.port = target, rtt, _free_port()

    def __enter__(self) -> int:
        context = multiprocessing.get_context("spawn")
        ready = context.Event()
        self.process = context.Process(
            target=_proxy, args=(self.port, self.target, self.rtt, ready), daemon=True
        )
        self.process.start()
        if not ready.wait(30):
            raise RuntimeError("the latency proxy did not start")
        return self.port

    def __exit__(self, *exc: object) -> None:
        self.process.terminate()
        self.process.join(10)


class _Session:
    """A bare SMTP session for the reference senders: EHLO, then raw writes and replies."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port))
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.file = self.sock.makefile("rb")
        self.reply()
        self.sock.sendall(b"EHLO reference.example.org\r\n")
        self.reply()

    def reply(self) -> int:
        while True:
            line = self.file.readline()
            if line[3:4] != b"-":
                return int(line[:3])

    def close(self) -> None:
        self.sock.sendall(b"QUIT\r\n")
        self.sock.close()


def _opening(n: int) -> bytes:
    return f"MAIL FROM:<ref@example.org>\r\nRCPT TO:<r{n}@example.org>\r\nDATA\r\n".encode()


def _data(message: bytes) -> bytes:
    return message.replace(b"\n.", b"\n..") + b".\r\n"


def lock_step(session: _Session, messages: list[bytes]) -> None:
    for n, message in enumerate(messages):
        for line in _opening(n).splitlines(keepends=True):
            session.sock.sendall(line)
            session.reply()
        session.sock.sendall(_data(message))
        session.reply()


def pipelined(session: _Session, messages: list[bytes]) -> None:
    for n, message in enumerate(messages):
        session.sock.sendall(_opening(n))
        for _ in range(3):
            session.reply()
        session.sock.sendall(_data(message))
        session.reply()


def one_round_trip(session: _Session, messages: list[bytes]) -> None:
    session.sock.sendall(_opening(0))
    for n, message in enumerate(messages):
        for _ in range(3):
            session.reply()
        behind = _opening(n + 1) if n + 1 < len(messages) else b""
        session.sock.sendall(_data(message) + behind)
        session.reply()


def reference(
    port: int, shapes: list[tuple[int, int]], connections: int, way: Callable[..., None]
) -> float:
    """Messages a second a reference sender reaches: connections opened together, each
    sending its share of pre-built messages."""
    shares = [
        [message_of_shape(size, lines, n) for n, (size, lines) in enumerate(shapes[k::connections])]
        for k in range(connections)
    ]
    sessions: list[_Session] = []

    def run(share: list[bytes]) -> None:
        session = _Session(port)
        sessions.append(session)
        way(session, share)

    threads = [threading.Thread(target=run, args=(share,)) for share in shares]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    for session in sessions:
        session.close()
    return len(shapes) / elapsed


def _arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--subscribers", type=int, default=2_000)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--rtt-ms", default="0,10,40", help="comma-separated round-trip times")
    return parser.parse_args()


def main() -> None:
    args = _arguments()
    rows = []
    with tempfile.TemporaryDirectory() as tmp, Sink() as sink:
        folder = Path(tmp)
        (folder / "bench.toml").write_text('[sender]\naddress = "digest@example.org"\n')
        for rtt in (float(ms) / 1000 for ms in args.rtt_ms.split(",")):
            database = fresh_database(folder, None, f"rtt{rtt}")
            prepare(database, args.subscribers, 0.1)
            sink.reset()
            with Proxy(sink.port, rtt) as port:
                report = run_digest(folder, database, port, args.connections, 1)
                stats = sink.stats()
                counts = stats["recipients"]
                once = len(counts) == report["sent"] and set(counts.values()) <= {1}
                rate = report["sent"] / report["wall_seconds"]
                shapes = list(zip(stats["sizes"], stats["lines"], strict=True))
                first = stats["first"] - report["started_at"]
                rates = {}
                for name, way in (
                    ("lock_step", lock_step),
                    ("pipelined", pipelined),
                    ("one_rtt", one_round_trip),
                ):
                    sink.reset()
                    rates[name] = reference(port, shapes, args.connections, way)
            rows.append((rtt, rate, rates, first, once, report["sent"]))
            print(
                f"rtt={rtt * 1000:.0f}ms connections={args.connections}: digest {rate:.0f} msg/s "
                f"({report['sent']:,} sent, exactly once: {once}, first message after "
                f"{first:.2f}s); lock-step {rates['lock_step']:.0f}, pipelined "
                f"{rates['pipelined']:.0f}, one round trip {rates['one_rtt']:.0f} msg/s; "
                f"ratios {rate / rates['lock_step']:.2f}, {rate / rates['pipelined']:.2f}, "
                f"{rate / rates['one_rtt']:.2f}",
                flush=True,
            )
    summary = f"bench latency subscribers={args.subscribers} connections={args.connections}"
    for rtt, rate, rates, first, _, _ in rows:
        tag = f"{rtt * 1000:.0f}ms"
        summary += (
            f" mps_{tag}={rate:.1f} vs_one_rtt_{tag}={rate / rates['one_rtt']:.3f}"
            f" vs_pipelined_{tag}={rate / rates['pipelined']:.3f} first_s_{tag}={first:.2f}"
        )
    summary += f" exactly_once={'yes' if all(r[4] for r in rows) else 'no'}"
    print(summary)


if __name__ == "__main__":
    main()
