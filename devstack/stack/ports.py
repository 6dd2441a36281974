"""Free loopback ports for the local stack's servers, and who listens on one."""

from __future__ import annotations

import os
import socket
import time
from pathlib import Path

LOOPBACK = "127.0.0.1"

_LISTEN = "0A"  # TCP_LISTEN in /proc/net/tcp's `st` column
# Local addresses whose listener takes connections to 127.0.0.1 (/proc/net/tcp{,6} hex, as the kernel prints them).
_IPV4_CATCHING = {"0100007F", "00000000"}  # 127.0.0.1, 0.0.0.0
_IPV6_CATCHING = {"0" * 32, "0000000000000000FFFF00000100007F"}  # ::, ::ffff:127.0.0.1


def free_port() -> int:
    """A TCP port on loopback that nothing listens on right now.

    Right now only: another process may take it before whoever asked binds it (pick-then-bind). A server
    started on it must be checked to be the one listening: procs.spawn_listening does that, and retries.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOOPBACK, 0))
        return int(sock.getsockname()[1])


def wait_for_port(port: int, timeout: float = 30.0, host: str = LOOPBACK) -> None:
    """Block until something accepts connections on host:port, or raise TimeoutError.

    It does not say *what* accepts them; to wait for a process of one's own, use procs.spawn_listening.
    """
    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise TimeoutError(f"nothing listens on {host}:{port} after {timeout:.0f}s") from None
            time.sleep(0.05)


def listening_inodes(port: int) -> set[int] | None:
    """Socket inodes listening where a connection to 127.0.0.1:port arrives; None where /proc cannot tell."""
    found: set[int] = set()
    readable = False
    for table, catching in (("/proc/net/tcp", _IPV4_CATCHING), ("/proc/net/tcp6", _IPV6_CATCHING)):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        readable = True
        for line in lines:
            fields = line.split()
            if len(fields) < 10 or fields[3] != _LISTEN:
                continue
            address, _, hex_port = fields[1].partition(":")
            if int(hex_port, 16) == port and address.upper() in catching:
                found.add(int(fields[9]))
    return found if readable else None


def session_pids(session: int) -> list[int]:
    """Live processes in a session (a process the stack spawns leads its own, so: it and its children)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[3]) == session and fields[0] != "Z":
            pids.append(int(entry.name))
    return pids


def socket_inodes(pid: int) -> set[int] | None:
    """Inodes of the sockets a process has open: empty when it is gone, None when it may not be read."""
    inodes: set[int] = set()
    try:
        fds = list(Path(f"/proc/{pid}/fd").iterdir())
    except PermissionError:
        return None
    except OSError:
        return inodes
    for fd in fds:
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(int(target[8:-1]))
    return inodes


def port_owner(port: int, session: int) -> str:
    """Who listens on 127.0.0.1:port: "ours" (a process of `session`), "other", "nobody" or "unknown"."""
    inodes = listening_inodes(port)
    if inodes is None:
        return "unknown"
    if not inodes:
        return "nobody"
    ours: set[int] = set()
    for pid in session_pids(session):
        held = socket_inodes(pid)
        if held is None:
            return "unknown"
        ours |= held
    return "ours" if inodes <= ours else "other"  # a listener beside ours (SO_REUSEPORT) would take some calls
