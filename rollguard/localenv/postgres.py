"""A real PostgreSQL server on a loopback port of its own, in a throw-away data directory.

PostgreSQL refuses to run as root; when we are root (CI, containers) the server runs as the
``postgres`` system user that Debian's package creates.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import subprocess
import tempfile
from pathlib import Path

from rollguard.localenv import _proc


def _pg_bin(name: str) -> str:
    found = shutil.which(name)
    if found and name != "postgres":
        return found
    candidates = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    if candidates:
        return candidates[-1]
    if found:
        return found
    raise RuntimeError(f"PostgreSQL's {name} not found; install Debian's postgresql package (make test does)")


class Postgres:
    def __init__(self, workdir: Path, *, database: str = "rollguard", user: str = "rollguard",
                 password: str = "rollguard") -> None:  # noqa: S107 (loopback test server)
        self.workdir = workdir
        self.database, self.user, self.password = database, user, password
        self.port = 0
        self._proc: subprocess.Popen[bytes] | None = None
        self._runas: list[str] = []
        self._owned_dir = False

    @property
    def url(self) -> str:
        """SQLAlchemy URL (psycopg 3 driver)."""
        return f"postgresql+psycopg://{self.user}:{self.password}@127.0.0.1:{self.port}/{self.database}"

    @property
    def dsn(self) -> str:
        """libpq DSN for psycopg / psql."""
        return f"postgresql://{self.user}:{self.password}@127.0.0.1:{self.port}/{self.database}"

    def start(self, timeout: float = 60.0) -> None:
        if os.geteuid() == 0:
            # The server runs as `postgres`, which cannot traverse root's 0700 directories
            # (pytest's tmp_path among them): keep its files in a directory of its own.
            self.workdir = Path(tempfile.mkdtemp(prefix="rollguard-pg-"))
            self._owned_dir = True
            self.workdir.chmod(0o755)
            pw = pwd.getpwnam("postgres")
            os.chown(self.workdir, pw.pw_uid, pw.pw_gid)
            self._runas = ["runuser", "-u", "postgres", "--"]
        data = self.workdir / "data"
        self.workdir.mkdir(parents=True, exist_ok=True)
        pwfile = self.workdir / "pwfile"
        pwfile.write_text(self.password + "\n")
        if self._runas:
            pw = pwd.getpwnam("postgres")
            os.chown(pwfile, pw.pw_uid, pw.pw_gid)
        if not (data / "PG_VERSION").exists():
            subprocess.run([*self._runas, _pg_bin("initdb"), "-D", str(data), "-U", self.user,
                            "--pwfile", str(pwfile), "-A", "scram-sha-256", "-E", "UTF8", "--no-sync"],
                           check=True, stdout=subprocess.DEVNULL)
        self.port = _proc.free_port()
        log = self.workdir / "postgres.log"
        if self._runas:
            log.touch()
            pw = pwd.getpwnam("postgres")
            os.chown(log, pw.pw_uid, pw.pw_gid)
        self._proc = _proc.start([
            *self._runas, _pg_bin("postgres"), "-D", str(data), "-p", str(self.port),
            "-c", "listen_addresses=127.0.0.1", "-c", f"unix_socket_directories={self.workdir}",
            "-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off",
            "-c", "max_connections=200",
        ], log)
        _proc.wait_for(self._ready, timeout=timeout, what="postgres", proc=self._proc, log=log)
        self._psql("postgres", f"CREATE DATABASE {self.database}", check=False)

    def _psql(self, db: str, sql: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        env = {**os.environ, "PGPASSWORD": self.password}
        return subprocess.run([_pg_bin("psql"), "-h", "127.0.0.1", "-p", str(self.port), "-U", self.user,
                               "-d", db, "-v", "ON_ERROR_STOP=1", "-qAtc", sql],
                              check=check, capture_output=True, text=True, env=env)

    def _ready(self) -> bool:
        return self._psql("postgres", "SELECT 1", check=False).returncode == 0

    def create_database(self, name: str) -> str:
        """A fresh database; returns its SQLAlchemy URL."""
        self._psql("postgres", f'CREATE DATABASE "{name}"')
        return f"postgresql+psycopg://{self.user}:{self.password}@127.0.0.1:{self.port}/{name}"

    def stop(self) -> None:
        if self._proc is not None:
            _proc.stop_pid(self._proc.pid)
            self._proc = None
        if self._owned_dir:
            shutil.rmtree(self.workdir, ignore_errors=True)
