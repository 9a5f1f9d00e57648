"""A real rspamd for the tests: Debian's, as a private scanner on a loopback port.

Only its scanning worker runs (no controller, proxy or fuzzy storage), with its
files in a temporary folder.  There is no network here: the checks that need
DNS find nothing and say so with symbols that score nothing.
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from .conftest import wait_until
from .smtp_server import free_port

RSPAMD = shutil.which("rspamd")
RSPAMC = shutil.which("rspamc")


def rspamd_available() -> bool:
    return RSPAMD is not None and RSPAMC is not None and Path("/etc/rspamd/rspamd.conf").exists()


@dataclass(frozen=True)
class Rspamd:
    port: int

    def check(self, message: bytes) -> dict[str, object]:
        """rspamd's verdict on a message, as an MTA on the same machine would ask."""
        assert RSPAMC is not None
        command = [RSPAMC, "-h", f"127.0.0.1:{self.port}", "-t", "60", "--json"]
        # As the MTA would say who connected: a known host, its HELO and address.
        command += ["-i", "127.0.0.1", "--helo", "mail.example.org"]
        command += ["--hostname", "mail.example.org"]
        result = subprocess.run(
            command, input=message, capture_output=True, timeout=120, check=True
        )
        verdict: dict[str, object] = json.loads(result.stdout)
        return verdict


@contextmanager
def rspamd() -> Iterator[Rspamd]:
    """Start rspamd's scanner on a free loopback port; stop it at the end."""
    assert RSPAMD is not None
    with tempfile.TemporaryDirectory(prefix="digest-rspamd-") as made:
        root = Path(made)
        for sub in ("local.d", "override.d", "db", "run", "log"):
            (root / sub).mkdir()
        port = free_port()
        (root / "local.d" / "worker-normal.inc").write_text(f'bind_socket = "127.0.0.1:{port}";\n')
        (root / "local.d" / "logging.inc").write_text('type = "console"; level = "error";\n')
        for worker in ("controller", "proxy", "fuzzy"):
            (root / "override.d" / f"worker-{worker}.inc").write_text("enabled = false;\n")
        folders = {"LOCAL_CONFDIR": root, "DBDIR": root / "db", "RUNDIR": root / "run"}
        folders["LOGDIR"] = root / "log"
        variables = [f"--var={name}={folder}" for name, folder in folders.items()]
        process = subprocess.Popen(
            [RSPAMD, "-f", "-i", "-c", "/etc/rspamd/rspamd.conf", *variables],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            wait_until(lambda: _listening(port) or process.poll() is not None, seconds=60)
            if process.poll() is not None:
                raise RuntimeError(f"rspamd did not start (exit {process.returncode})")
            yield Rspamd(port)
        finally:
            process.terminate()
            process.wait(timeout=30)


def _listening(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0
