"""A durable, ordered local spool (outbox) for failure events: SQLite in WAL mode with
synchronous=FULL, so an event appended survives a crash of the process (and of the machine)."""

from __future__ import annotations

import json
import sqlite3
import threading
from pathlib import Path
from typing import Any


class Spool:
    def __init__(self, path: Path, *, max_events: int = 100_000, busy_timeout: float = 2.0) -> None:
        self.path, self.max_events = path, max_events
        path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(str(path), timeout=busy_timeout, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.execute("CREATE TABLE IF NOT EXISTS events "
                         "(seq INTEGER PRIMARY KEY AUTOINCREMENT, body TEXT NOT NULL)")
        # Events the service rejected as invalid (4xx other than auth): kept, never silently lost.
        self._db.execute("CREATE TABLE IF NOT EXISTS rejected (seq INTEGER PRIMARY KEY, body TEXT NOT NULL, "
                         "reason TEXT NOT NULL)")

    def append(self, event: dict[str, Any]) -> bool:
        """False when the spool is full (the caller counts and reports the drop)."""
        body = json.dumps(event, separators=(",", ":"), default=str)
        with self._lock:
            (n,) = self._db.execute("SELECT count(*) FROM events").fetchone()
            if n >= self.max_events:
                return False
            self._db.execute("INSERT INTO events (body) VALUES (?)", (body,))
        return True

    def peek(self, n: int) -> list[tuple[int, dict[str, Any]]]:
        """The oldest n events, in the order they were appended."""
        with self._lock:
            rows = self._db.execute("SELECT seq, body FROM events ORDER BY seq LIMIT ?", (n,)).fetchall()
        return [(int(seq), json.loads(body)) for seq, body in rows]

    def ack(self, seqs: list[int]) -> None:
        if not seqs:
            return
        with self._lock:
            self._db.executemany("DELETE FROM events WHERE seq = ?", [(s,) for s in seqs])

    def reject(self, seqs: list[int], reason: str) -> None:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            for s in seqs:
                self._db.execute("INSERT OR REPLACE INTO rejected (seq, body, reason) "
                                 "SELECT seq, body, ? FROM events WHERE seq = ?", (reason, s))
                self._db.execute("DELETE FROM events WHERE seq = ?", (s,))
            self._db.execute("COMMIT")

    def __len__(self) -> int:
        with self._lock:
            (n,) = self._db.execute("SELECT count(*) FROM events").fetchone()
        return int(n)

    def rejected(self) -> list[tuple[dict[str, Any], str]]:
        with self._lock:
            rows = self._db.execute("SELECT body, reason FROM rejected ORDER BY seq").fetchall()
        return [(json.loads(b), r) for b, r in rows]

    def close(self) -> None:
        with self._lock:
            self._db.close()
