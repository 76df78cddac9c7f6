"""A durable, ordered local spool (outbox) for failure events: SQLite in WAL mode.

Two connections, so the reporter's caller and its sender never wait on each other's work:
the appending one only INSERTs (never a checkpoint: ``wal_autocheckpoint=0``); the sender's
reads batches, deletes what was delivered (one statement, one transaction) and checkpoints
the WAL (`maintain`). The number of pending events is kept in memory (a ``count(*)`` costs
milliseconds at tens of thousands of rows), refreshed from the table by `maintain`.

Durability (``durability``), what an `append` that returned True survives:

- ``"buffered"``: the item goes to an in-memory queue that a writer thread commits every
  ``flush_interval`` (20 ms) in one transaction; the caller never makes a system call, so an
  append costs microseconds even on a loaded machine (a blocking write lets the scheduler take
  the CPU away for milliseconds). The queue is written at `close` and at interpreter exit;
  what a SIGKILL or an OOM kill catches in it (at most ``flush_interval`` of events) is lost.
- ``"process"`` (``synchronous=NORMAL``): committed before `append` returns; survives the
  process being killed (it is in the WAL, in the OS's cache), not a power loss.
- ``"machine"`` (``synchronous=FULL``): also survives a power loss or a kernel crash, at the
  cost of an fsync per append (milliseconds on most disks).
"""

from __future__ import annotations

import atexit
import collections
import json
import logging
import sqlite3
import threading
import weakref
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

log = logging.getLogger("rollguard.sdk.spool")

Durability = Literal["buffered", "process", "machine"]
FLUSH_INTERVAL = 0.02
EVENT, RECOVERY = "event", "recovery"


class Spool:
    """Items (a kind and a JSON body) in the order they were appended; see the module doc."""

    def __init__(self, path: Path, *, max_events: int = 100_000, busy_timeout: float = 2.0,
                 durability: Durability = "process", flush_interval: float = FLUSH_INTERVAL) -> None:
        self.path, self.max_events, self.durability = path, max_events, durability
        path.parent.mkdir(parents=True, exist_ok=True)
        sync = "FULL" if durability == "machine" else "NORMAL"
        self._wlock, self._rlock, self._nlock = threading.Lock(), threading.Lock(), threading.Lock()
        self._w = self._connect(busy_timeout, sync)
        self._w.execute("PRAGMA wal_autocheckpoint=0")  # the sender checkpoints, never a caller
        self._r = self._connect(busy_timeout, sync)
        self._r.execute("CREATE TABLE IF NOT EXISTS events (seq INTEGER PRIMARY KEY AUTOINCREMENT, "
                        "body TEXT NOT NULL, kind TEXT NOT NULL DEFAULT 'event')")
        if "kind" not in {row[1] for row in self._r.execute("PRAGMA table_info(events)")}:
            # a spool written by an earlier version: the kind was a key of the body
            self._r.execute("BEGIN IMMEDIATE")
            self._r.execute("ALTER TABLE events ADD COLUMN kind TEXT NOT NULL DEFAULT 'event'")
            self._r.execute("UPDATE events SET kind = 'recovery' WHERE body LIKE '%\"_kind\":\"recovery\"%'")
            self._r.execute("COMMIT")
        # Events the service refused as invalid: kept, never silently lost.
        self._r.execute("CREATE TABLE IF NOT EXISTS rejected (seq INTEGER PRIMARY KEY, body TEXT NOT NULL, "
                        "reason TEXT NOT NULL)")
        self._pending = self._count()
        # "buffered": (body, kind) waiting for the writer thread; deque appends are thread-safe
        self._buffer: collections.deque[tuple[str, str]] = collections.deque()
        self._closing = threading.Event()
        self._writer: threading.Thread | None = None
        if durability == "buffered":
            self._writer = threading.Thread(target=self._write_loop, args=(flush_interval,),
                                            name="rollguard-spool-writer", daemon=True)
            self._writer.start()
            self._exit_hook = _close_at_exit(weakref.ref(self))
            atexit.register(self._exit_hook)

    def _connect(self, busy_timeout: float, sync: str) -> sqlite3.Connection:
        db = sqlite3.connect(str(self.path), timeout=busy_timeout, check_same_thread=False, isolation_level=None)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute(f"PRAGMA synchronous={sync}")
        return db

    def _count(self) -> int:
        with self._rlock:
            (n,) = self._r.execute("SELECT count(*) FROM events").fetchone()
        return int(n)

    @property
    def pending(self) -> int:
        """Items waiting, from memory (exact within this process; `maintain` re-reads the table)."""
        return self._pending

    def append(self, item: dict[str, Any], kind: str = EVENT) -> bool:
        """Append one item; False when the spool is full (the caller counts and reports the drop).
        Raises ``sqlite3.Error`` when the file cannot be written (disk full, permissions; when
        buffered, the writer thread keeps the items and logs the error instead, and the spool
        fills up: later appends then answer False)."""
        if self._pending >= self.max_events:
            return False
        body = json.dumps(item, separators=(",", ":"), allow_nan=False)
        if self._writer is not None:
            # buffered and counted at once: `maintain` recounts under this lock
            with self._nlock:
                self._buffer.append((body, kind))
                self._pending += 1
            return True
        with self._wlock:
            self._w.execute("INSERT INTO events (body, kind) VALUES (?, ?)", (body, kind))
        with self._nlock:
            self._pending += 1
        return True

    def _write_loop(self, interval: float) -> None:
        while not self._closing.wait(interval):
            self.write_buffered()

    def write_buffered(self) -> None:
        """Commit what `append` buffered, in order, in one transaction (the writer thread does it
        every ``flush_interval``; `peek_raw` and `close` too)."""
        with self._wlock:
            items: list[tuple[str, str]] = []
            while self._buffer:
                items.append(self._buffer.popleft())
            if not items:
                return
            try:
                self._w.execute("BEGIN")
                self._w.executemany("INSERT INTO events (body, kind) VALUES (?, ?)", items)
                self._w.execute("COMMIT")
            except sqlite3.Error as exc:
                if self._w.in_transaction:
                    self._w.execute("ROLLBACK")
                self._buffer.extendleft(reversed(items))  # kept, in order, for the next try
                log.error("spool %s: %d buffered events not written yet (%s); retrying", self.path, len(items), exc)

    def peek_raw(self, n: int) -> list[tuple[int, str, str]]:
        """The oldest ``n`` items as (seq, kind, JSON body), in the order they were appended."""
        if self._buffer:
            self.write_buffered()
        with self._rlock:
            rows = self._r.execute("SELECT seq, kind, body FROM events ORDER BY seq LIMIT ?", (n,)).fetchall()
        return [(int(seq), str(kind), str(body)) for seq, kind, body in rows]

    def peek(self, n: int) -> list[tuple[int, dict[str, Any]]]:
        """The oldest ``n`` items as (seq, item), in order (a recovery mark carries ``_kind``)."""
        out = []
        for seq, kind, body in self.peek_raw(n):
            item = json.loads(body)
            if kind != EVENT:
                item["_kind"] = kind
            out.append((seq, item))
        return out

    def ack(self, seqs: list[int]) -> None:
        """Delete delivered items: one statement, one transaction (one WAL commit)."""
        if not seqs:
            return
        with self._rlock:
            n = 0
            for i in range(0, len(seqs), 500):  # SQLite's bound-parameter limit
                chunk = seqs[i:i + 500]
                marks = ",".join("?" * len(chunk))  # placeholders only; the values are bound
                n += self._r.execute(f"DELETE FROM events WHERE seq IN ({marks})", chunk).rowcount  # noqa: S608
        with self._nlock:
            self._pending = max(0, self._pending - n)

    def reject(self, seqs: list[int], reason: str) -> None:
        """Move items the service refused into the ``rejected`` table, with the reason."""
        with self._rlock:
            self._r.execute("BEGIN IMMEDIATE")
            n = 0
            for s in seqs:
                self._r.execute("INSERT OR REPLACE INTO rejected (seq, body, reason) "
                                "SELECT seq, body, ? FROM events WHERE seq = ?", (reason, s))
                n += self._r.execute("DELETE FROM events WHERE seq = ?", (s,)).rowcount
            self._r.execute("COMMIT")
        with self._nlock:
            self._pending = max(0, self._pending - n)

    def maintain(self) -> None:
        """Checkpoint the WAL into the database file (without blocking appends) and re-read the
        pending count (other processes may share the file). The sender calls it now and then."""
        with self._rlock:
            self._r.execute("PRAGMA wal_checkpoint(PASSIVE)")
        # Under the writer's lock no batch is between the buffer and the table, and under the
        # count's lock no append is between the buffer and the count: table + buffer is exact.
        with self._wlock, self._nlock:
            self._pending = self._count() + len(self._buffer)

    def __len__(self) -> int:
        """Items waiting, counted in the table (milliseconds at tens of thousands: not for a hot
        path), plus those still buffered."""
        with self._wlock:  # no batch between the buffer and the table while counting
            return self._count() + len(self._buffer)

    def rejected(self) -> list[tuple[dict[str, Any], str]]:
        """The items set aside, oldest first, with the service's reason."""
        with self._rlock:
            rows = self._r.execute("SELECT body, reason FROM rejected ORDER BY seq").fetchall()
        return [(json.loads(b), r) for b, r in rows]

    def close(self) -> None:
        """Write what is buffered, stop the writer thread, close the database."""
        if self._closing.is_set():
            return
        self._closing.set()
        if self._writer is not None:
            atexit.unregister(self._exit_hook)
            self._writer.join(5)
            self.write_buffered()
        with self._wlock:
            self._w.close()
        with self._rlock:
            self._r.close()


def _close_at_exit(ref: weakref.ref[Spool]) -> Callable[[], None]:
    """An atexit hook that writes a buffered spool's queue, without keeping the spool alive."""

    def hook() -> None:
        spool = ref()
        if spool is not None:
            spool.close()

    return hook
