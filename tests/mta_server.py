"""A real MTA for the tests: Debian's Postfix, as a private instance on a loopback port.

It takes mail for ``example.net`` (an unknown local user bounces, ``ada``
is accepted and discarded) and delivers mail for ``inbound.test``, where
digest's bounce address lives, to a pipe that saves each message, so that a
test reads the DSN Postfix itself wrote.  (The pipe runs as an unprivileged
user, who may not run this checkout's Python; the test runs ``digest
inbound`` on what was saved, as the pipe would.)
"""

from __future__ import annotations

import os
import pwd
import re
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from .smtp_server import free_port

POSTFIX = shutil.which("postfix") or "/usr/sbin/postfix"


def postfix_available() -> bool:
    try:
        pwd.getpwnam("postfix")
    except KeyError:
        return False
    return Path(POSTFIX).exists() and Path("/etc/postfix/master.cf").exists() and os.geteuid() == 0


@dataclass(frozen=True)
class Postfix:
    port: int
    #: Where the messages for inbound.test land, one file each.
    saved: Path


@contextmanager
def postfix(relay_port: int | None = None) -> Iterator[Postfix]:
    """Start a private Postfix; stop it and remove its files at the end.  With
    ``relay_port``, mail for ``relay.example.com`` is relayed to that loopback port
    by a client that says HELO, so that every 8-bit part is converted on the way."""
    with tempfile.TemporaryDirectory(prefix="digest-postfix-") as made:
        root = Path(made)
        os.chmod(root, 0o755)
        for sub in ("etc", "spool", "data", "saved"):
            (root / sub).mkdir()
        os.chown(root / "data", pwd.getpwnam("postfix").pw_uid, -1)
        os.chmod(root / "saved", 0o777)
        port = free_port()
        (root / "etc" / "main.cf").write_text(f"""
queue_directory = {root}/spool
data_directory = {root}/data
mail_owner = postfix
setgid_group = postdrop
compatibility_level = 3.6
myhostname = mx.digest.test
mydomain = digest.test
myorigin = digest.test
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mydestination = example.net, inbound.test
local_recipient_maps =
alias_maps =
alias_database =
recipient_delimiter = +
transport_maps = texthash:{root}/etc/transport
mynetworks = 127.0.0.0/8
smtpd_recipient_restrictions = permit_mynetworks, reject
biff = no
""")
        relay = f"relay.example.com hop7:[127.0.0.1]:{relay_port}\n" if relay_port else ""
        (root / "etc" / "transport").write_text(
            "inbound.test keep:\nada@example.net discard:\n" + relay
        )
        master = re.sub(
            r"(?m)^smtp\s+inet.*$",
            f"127.0.0.1:{port} inet n - n - - smtpd",
            Path("/etc/postfix/master.cf").read_text(),
            count=1,
        )
        master += (
            "keep      unix  -       n       n       -       -       pipe\n"
            f"  flags=Rq user=nobody argv=/usr/bin/tee {root}/saved/${{queue_id}}.eml\n"
            # A next hop that knows no ESMTP (HELO only): Postfix must convert any
            # 8-bit part to quoted-printable before it hands the message on.
            "hop7      unix  -       -       n       -       -       smtp\n"
            "  -o smtp_never_send_ehlo=yes\n"
        )
        (root / "etc" / "master.cf").write_text(master)
        config = ["-c", str(root / "etc")]
        started = subprocess.run([POSTFIX, *config, "start"], capture_output=True, text=True)
        if started.returncode:
            raise RuntimeError(f"Postfix did not start: {started.stderr.strip()[-500:]}")
        try:
            yield Postfix(port, root / "saved")
        finally:
            subprocess.run([POSTFIX, *config, "stop"], capture_output=True)
