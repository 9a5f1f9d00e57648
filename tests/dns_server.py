"""A DNS server of our own for the tests: a zone in a dict, answered on loopback over UDP
and TCP (dnspython builds and reads the messages), so that SPF, DKIM, DMARC and MX
checks meet real DNS traffic and never the network."""

from __future__ import annotations

import socketserver
import struct
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import dns.flags
import dns.message
import dns.rcode
import dns.rdatatype
import dns.rrset

#: (name, type) -> records as text: TXT as the plain string, MX as "10 host", A as the address.
Zone = dict[tuple[str, str], list[str]]


def _as_rdata(rdtype: str, text: str) -> str:
    if rdtype != "TXT":
        return text
    chunks = [text[i : i + 255] for i in range(0, len(text), 255)] or [""]
    return " ".join('"' + chunk.replace('"', '\\"') + '"' for chunk in chunks)


def answer(zone: Zone, data: bytes, limit: int | None) -> bytes:
    """The response to one query, truncated (TC) when it does not fit ``limit`` bytes."""
    query = dns.message.from_wire(data)
    response = dns.message.make_response(query)
    question = query.question[0]
    name = question.name.to_text().rstrip(".").lower()
    rdtype = dns.rdatatype.to_text(question.rdtype)
    records = zone.get((name, rdtype))
    if records:
        rdata = [_as_rdata(rdtype, r) for r in records]
        response.answer.append(dns.rrset.from_text_list(question.name, 60, "IN", rdtype, rdata))
    elif not any(known == name for known, _ in zone):
        response.set_rcode(dns.rcode.NXDOMAIN)
    wire = response.to_wire()
    if limit is not None and len(wire) > limit:
        response.answer = []
        response.flags |= dns.flags.TC
        wire = response.to_wire()
    return wire


def _udp_limit(data: bytes) -> int:
    query = dns.message.from_wire(data)
    return max(512, query.payload) if query.edns >= 0 else 512


class _Udp(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        data, sock = self.request
        sock.sendto(answer(self.server.zone, data, _udp_limit(data)), self.client_address)  # type: ignore[attr-defined]


class _Tcp(socketserver.StreamRequestHandler):
    def handle(self) -> None:
        head = self.rfile.read(2)
        if len(head) < 2:
            return
        data = self.rfile.read(struct.unpack("!H", head)[0])
        wire = answer(self.server.zone, data, None)  # type: ignore[attr-defined]
        self.wfile.write(struct.pack("!H", len(wire)) + wire)


@contextmanager
def dns_server(zone: Zone) -> Iterator[str]:
    """Serve ``zone`` (changes to it show at once) on one loopback port over UDP and TCP;
    yield ``127.0.0.1:PORT``."""
    servers: list[Any] = []
    while not servers:  # the UDP port's TCP twin may be taken: then take another pair
        udp = socketserver.ThreadingUDPServer(("127.0.0.1", 0), _Udp)
        port = udp.server_address[1]
        try:
            servers = [udp, socketserver.ThreadingTCPServer(("127.0.0.1", port), _Tcp)]
        except OSError:
            udp.server_close()
    for server in servers:
        server.zone = zone
        server.daemon_threads = True
        threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"127.0.0.1:{port}"
    finally:
        for server in servers:
            server.shutdown()
            server.server_close()
