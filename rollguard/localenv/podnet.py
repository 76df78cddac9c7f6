"""Which loopback pod network (``127.<net>.0.0/16``) a local cluster may use.

Two local clusters on one machine (a user's ``hack/control-plane.sh up`` and a test run, or
several test workers) must never hand out the same pod address: a pod's process listens on
its address, so a second cluster's pod would find the port taken, or Prometheus would scrape
the other cluster's process under this cluster's labels. Each cluster therefore claims a
network number ``net`` (the second octet) before it starts, and holds it while any process
named in its claim is alive.

A claim is a file ``<CLAIM_DIR>/<net>.claim`` holding process ids, one per line. Claims are
made under an exclusive ``flock`` of ``<CLAIM_DIR>/lock``, so two clusters starting at the same
moment get different networks. A claim whose processes are all gone is stale and reused: a
killed test run leaves nothing that blocks the next one, unless it left a process listening on
an address of that network (a pod's process that outlived its runner): a network with a
listening socket is skipped whatever its claim says, because a pod given that address could
not bind it, and the Service, the users and Prometheus would reach the stray process instead.
"""

from __future__ import annotations

import fcntl
import os
import sys
from collections.abc import Iterable
from pathlib import Path

FIRST_NET = 10  # 127.10.0.0/16, the network of the first cluster on a machine
LAST_NET = 99
CLAIM_DIR = Path(os.environ.get("ROLLGUARD_PODNET_DIR", "/tmp/rollguard-localenv-podnet"))


class NoFreePodNetwork(RuntimeError):
    """Every network from FIRST_NET to LAST_NET is held by a live local cluster."""


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _holders(path: Path) -> list[int]:
    try:
        return [int(x) for x in path.read_text().split() if x.isdigit()]
    except FileNotFoundError:
        return []


def listening_nets(tcp_table: Path = Path("/proc/net/tcp")) -> set[int]:
    """The second octets of 127.x.y.z addresses with a listening TCP socket (Linux's
    ``/proc/net/tcp``: addresses in hexadecimal, in the host's byte order; state 0A is LISTEN).
    Empty where the table cannot be read."""
    nets: set[int] = set()
    try:
        lines = tcp_table.read_text().splitlines()[1:]
    except OSError:
        return nets
    for line in lines:
        fields = line.split()
        if len(fields) < 4 or fields[3] != "0A":
            continue
        addr = bytes.fromhex(fields[1].split(":")[0])
        octets = addr[::-1] if sys.byteorder == "little" else addr
        if len(octets) == 4 and octets[0] == 127:
            nets.add(octets[1])
    return nets


def _locked(claim_dir: Path) -> int:
    """An exclusive lock on the claim directory; close the returned descriptor to release it."""
    claim_dir.mkdir(parents=True, exist_ok=True)
    fd = os.open(claim_dir / "lock", os.O_CREAT | os.O_RDWR, 0o644)
    fcntl.flock(fd, fcntl.LOCK_EX)
    return fd


def claim(pids: Iterable[int] | None = None, claim_dir: Path | None = None,
          tcp_table: Path = Path("/proc/net/tcp")) -> int:
    """Claim the lowest free network number for the processes ``pids`` (default: this process):
    no live claim holds it and nothing listens on it.

    Returns ``net`` (FIRST_NET..LAST_NET); the cluster's nodes get ``127.<net>.<i>.0/24``.
    Raises :class:`NoFreePodNetwork` when every number is held by live processes.
    """
    d = claim_dir or CLAIM_DIR
    holders = list(pids) if pids is not None else [os.getpid()]
    fd = _locked(d)
    try:
        in_use = listening_nets(tcp_table)
        for net in range(FIRST_NET, LAST_NET + 1):
            path = d / f"{net}.claim"
            if net in in_use or any(_alive(p) for p in _holders(path)):
                continue
            path.write_text("".join(f"{p}\n" for p in holders))
            return net
    finally:
        os.close(fd)
    raise NoFreePodNetwork(f"pod networks 127.{FIRST_NET}-{LAST_NET}.0.0/16 are all held by running local "
                           f"clusters (claims in {d}) or have processes listening on them; stop one with "
                           "`hack/control-plane.sh down`")


def hold(net: int, pids: Iterable[int], claim_dir: Path | None = None) -> None:
    """Add ``pids`` to the claim on ``net``: the network stays taken while any of them lives
    (a cluster started by ``up`` outlives the command that claimed it)."""
    d = claim_dir or CLAIM_DIR
    fd = _locked(d)
    try:
        path = d / f"{net}.claim"
        current = _holders(path)
        path.write_text("".join(f"{p}\n" for p in [*current, *(p for p in pids if p not in current)]))
    finally:
        os.close(fd)


def release(net: int, claim_dir: Path | None = None) -> None:
    """Give ``net`` back (the cluster stopped)."""
    d = claim_dir or CLAIM_DIR
    fd = _locked(d)
    try:
        (d / f"{net}.claim").unlink(missing_ok=True)
    finally:
        os.close(fd)
