"""A real IMAP server for the tests: Debian's Dovecot, on loopback, in a folder of its own.

Mail is filed into it with IMAP APPEND, as any delivery agent would leave it.
"""

from __future__ import annotations

import imaplib
import os
import pwd
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from .smtp_server import free_port

DOVECOT = shutil.which("dovecot") or "/usr/sbin/dovecot"
USER, PASSWORD = "digest", "inbound-test-password"


def dovecot_available() -> bool:
    return Path(DOVECOT).exists() and os.geteuid() == 0


@contextmanager
def dovecot(capabilities: str | None = None) -> Iterator[str]:
    """Run Dovecot on a free loopback port; yield the ``imap://`` URL of its mailbox.

    ``capabilities`` replaces what it offers after login (a server without MOVE,
    say).  Its files are in a folder of their own that Dovecot's users can enter
    (pytest's temporary folders are root's alone).
    """
    with tempfile.TemporaryDirectory(prefix="digest-dovecot-") as made:
        os.chmod(made, 0o755)
        yield from _serving(Path(made), capabilities)


def _serving(folder: Path, capabilities: str | None) -> Iterator[str]:
    port = free_port()
    nobody = pwd.getpwnam("nobody")
    for sub in ("run", "state", "mail", "home"):
        (folder / sub).mkdir(parents=True, exist_ok=True)
    for sub in ("mail", "home"):
        os.chown(folder / sub, nobody.pw_uid, nobody.pw_gid)
    (folder / "users").write_text(f"{USER}:{{PLAIN}}{PASSWORD}::::::\n")
    config = folder / "dovecot.conf"
    config.write_text(f"""
protocols = imap
listen = 127.0.0.1
base_dir = {folder}/run
state_dir = {folder}/state
log_path = {folder}/dovecot.log
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
mail_location = maildir:{folder}/mail/%u
first_valid_uid = {nobody.pw_uid}
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {folder}/users
}}
userdb {{
  driver = static
  args = uid={nobody.pw_uid} gid={nobody.pw_gid} home={folder}/home/%u
}}
service imap-login {{
  inet_listener imap {{
    address = 127.0.0.1
    port = {port}
  }}
  inet_listener imaps {{
    port = 0
  }}
}}
{f"imap_capability = {capabilities}" if capabilities else ""}
service anvil {{
  chroot =
}}
service imap-login {{
  chroot =
}}
""")
    process = subprocess.Popen(
        [DOVECOT, "-F", "-c", str(config)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with imaplib.IMAP4("127.0.0.1", port, timeout=2) as probe:
                    probe.login(USER, PASSWORD)
                break
            except (OSError, imaplib.IMAP4.error):
                if process.poll() is not None or time.monotonic() > deadline:
                    log = (
                        (folder / "dovecot.log").read_text()
                        if (folder / "dovecot.log").exists()
                        else ""
                    )
                    raise RuntimeError(f"Dovecot did not start: {log[-2000:]}") from None
                time.sleep(0.1)
        yield f"imap://{USER}:{PASSWORD}@127.0.0.1:{port}/INBOX"
    finally:
        process.terminate()
        process.wait(10)


def file_into(url_port: int, data: bytes, folder: str = "INBOX") -> None:
    """Deliver a message into the mailbox (IMAP APPEND)."""
    with imaplib.IMAP4("127.0.0.1", url_port, timeout=10) as imap:
        imap.login(USER, PASSWORD)
        imap.append(folder, "", imaplib.Time2Internaldate(time.time()), data)


def messages_in(url_port: int, folder: str) -> int:
    with imaplib.IMAP4("127.0.0.1", url_port, timeout=10) as imap:
        imap.login(USER, PASSWORD)
        status, count = imap.select(folder, readonly=True)
        return int(count[0] or 0) if status == "OK" else 0
