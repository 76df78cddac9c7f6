"""Feature flags for backend code: ``is_flag_enabled(name)``, ``get_environment()``, ``reload_flags()``.

Reads ``flags.json`` that the rollguard operator mounts at ``/etc/rollguard/flags`` (another
directory with ``ROLLGUARD_FLAGS_DIR``). Never raises, never blocks on the network:

- order: environment variable override, then the file, then False.
  Overrides: the flag's declared ``envVar`` and ``AOS_FEATURE_<KEY>`` (``true|false``, also
  ``1|0``, ``yes|no``, ``on|off``). An override may always turn a flag off; it may turn a
  flag *on* only when the flag needs no sign-off or has a valid one: a pod's environment is
  not a way around the sign-off gate.
- the file is re-read when it changes (checked at most every ``check_interval`` seconds;
  Kubernetes swaps a ConfigMap volume's files atomically, so a half-written file is never seen);
- an unknown flag is False and logged once; a corrupt or unreadable file keeps the last
  good values and logs the error (once per bad version of the file).
"""

from __future__ import annotations

import functools
import json
import logging
import os
import re
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

log = logging.getLogger("rollguard.flags")

DEFAULT_DIR = "/etc/rollguard/flags"
FLAGS_FILE = "flags.json"
DIR_ENV = "ROLLGUARD_FLAGS_DIR"
ENVIRONMENT_ENV = "ROLLGUARD_ENVIRONMENT"
DEFAULT_ENVIRONMENT = "development"
ENV_VAR_PREFIX = "AOS_FEATURE_"
_TRUE = {"true", "1", "yes", "on"}
_FALSE = {"false", "0", "no", "off"}


@functools.lru_cache(maxsize=4096)
def default_env_var(key: str) -> str:
    """``AOS_FEATURE_<KEY>`` (same rule as the operator's ``rollguard.flags.default_env_var``)."""
    return ENV_VAR_PREFIX + re.sub(r"[^A-Z0-9]+", "_", key.upper()).strip("_")


def _parse_bool(raw: str) -> bool | None:
    v = raw.strip().lower()
    return True if v in _TRUE else False if v in _FALSE else None


class FlagReader:
    """One flags file, its last good contents, and the process environment's overrides.

    ``directory``: where ``flags.json`` is (default ``$ROLLGUARD_FLAGS_DIR`` or
    ``/etc/rollguard/flags``); ``environ``: the overrides' source (default ``os.environ``);
    ``check_interval``: seconds between two looks at the file's inode/size/mtime;
    ``clock``: seconds of a clock that only moves forward (default ``time.monotonic``; tests
    pass their own). The first answer always reads the file, whatever the clock reads: a
    monotonic clock's origin is unspecified (on Linux it is the boot), so no value of it
    means "long ago". Never raises.
    """

    def __init__(self, directory: str | Path | None = None, environ: Mapping[str, str] | None = None,
                 check_interval: float = 1.0, clock: Callable[[], float] = time.monotonic) -> None:
        self._directory = Path(directory) if directory is not None else None
        self._environ = environ
        self.check_interval = check_interval
        self._clock = clock
        self._lock = threading.Lock()
        self._flags: dict[str, dict[str, Any]] = {}
        self._doc: dict[str, Any] = {}
        self._signature: tuple[int, int, int] | None = None  # (inode, size, mtime_ns) of the last read
        self._bad_signature: tuple[int, int, int] | None = None
        self._checked: float | None = None  # clock reading of the last look; None: never looked
        self._warned: set[str] = set()
        self._vars: dict[str, tuple[str, ...]] = {}
        self.last_error: str | None = None
        self.loaded_from: Path | None = None

    # -- where things are ------------------------------------------------------------------
    @property
    def environ(self) -> Mapping[str, str]:
        return self._environ if self._environ is not None else os.environ

    @property
    def path(self) -> Path:
        directory = self._directory or Path(self.environ.get(DIR_ENV) or DEFAULT_DIR)
        return directory / FLAGS_FILE

    # -- loading ---------------------------------------------------------------------------
    def reload(self, force: bool = True) -> bool:
        """Re-read the file if it changed (always when ``force``); False if the file is missing or bad."""
        with self._lock:
            self._checked = self._clock()
            path = self.path
            try:
                st = path.stat()
            except FileNotFoundError:
                if self._signature is not None:
                    self._note_error(f"flags file {path} disappeared; keeping the last good values")
                return False
            except OSError as e:
                self._note_error(f"cannot stat flags file {path}: {e}; keeping the last good values")
                return False
            sig = (st.st_ino, st.st_size, st.st_mtime_ns)
            if not force and sig in (self._signature, self._bad_signature):
                return sig == self._signature
            try:
                doc = json.loads(path.read_text(encoding="utf-8"))
                flags = doc["flags"]
                if not isinstance(flags, dict) or not all(isinstance(v, dict) for v in flags.values()):
                    raise ValueError("'flags' must map each flag key to an object")
            except (OSError, ValueError, KeyError, TypeError) as e:
                if sig != self._bad_signature:
                    self._bad_signature = sig
                    kept = f"keeping the last good values ({len(self._flags)} flags)"
                    self._note_error(f"flags file {path} is corrupt ({type(e).__name__}: {e}); {kept}")
                return False
            self._doc, self._flags, self._signature, self._vars = doc, flags, sig, {}
            self._bad_signature, self.last_error, self.loaded_from = None, None, path
            log.info("loaded %d flags for environment %s from %s", len(flags), doc.get("environment"), path)
            return True

    def _note_error(self, message: str) -> None:
        self.last_error = message
        log.error(message)

    def _maybe_reload(self) -> None:
        checked = self._checked
        if checked is None or self._clock() - checked >= self.check_interval:
            self.reload(force=False)

    # -- answers ---------------------------------------------------------------------------
    def is_enabled(self, name: str) -> bool:
        self._maybe_reload()
        entry = self._flags.get(name)
        override = self._override(name, entry)
        if override is not None:
            return override
        if entry is None:
            self._warn_once(f"unknown:{name}", "unknown flag %r: treated as false (not in %s)", name, self.path)
            return False
        return entry.get("value") is True

    def _override(self, name: str, entry: dict[str, Any] | None) -> bool | None:
        for var in self._override_vars(name, entry):
            raw = self.environ.get(var)
            if raw is None:
                continue
            value = _parse_bool(raw)
            if value is None:
                self._warn_once(f"badvar:{var}", "ignoring %s=%r: expected true or false", var, raw)
                continue
            if value and entry and entry.get("requiresSignoff") and entry.get("signoff") != "Valid":
                self._warn_once(f"gated:{var}", "ignoring %s=true: flag %r requires a sign-off (%s)",
                                var, name, entry.get("signoff"))
                continue
            return value
        return None

    def _override_vars(self, name: str, entry: dict[str, Any] | None) -> tuple[str, ...]:
        """The flag's declared variables first, then AOS_FEATURE_<KEY>; computed once per loaded file."""
        cached = self._vars.get(name)
        if cached is None:
            generic = default_env_var(name)
            declared = [v for v in (entry or {}).get("envVars", []) if isinstance(v, str) and v != generic]
            cached = self._vars[name] = (*declared, generic)
        return cached

    def _warn_once(self, token: str, msg: str, *args: object) -> None:
        if token not in self._warned:
            self._warned.add(token)
            log.warning(msg, *args)

    def environment(self) -> str:
        self._maybe_reload()
        return self.environ.get(ENVIRONMENT_ENV) or str(self._doc.get("environment") or DEFAULT_ENVIRONMENT)

    def flags(self) -> dict[str, bool]:
        """Every known flag's effective value (overrides applied)."""
        self._maybe_reload()
        return {name: self.is_enabled(name) for name in sorted(self._flags)}


_default: FlagReader | None = None
_default_lock = threading.Lock()


def default_reader() -> FlagReader:
    global _default
    with _default_lock:
        if _default is None:
            _default = FlagReader()
        return _default


def is_flag_enabled(name: str) -> bool:
    """True only if the flag is on for this pod's environment (override, else file, else False)."""
    return default_reader().is_enabled(name)


def get_environment() -> str:
    """``ROLLGUARD_ENVIRONMENT``, else the environment of the mounted flags file, else "development"."""
    return default_reader().environment()


def reload_flags() -> bool:
    """Re-read the flags file now (it is also re-read by itself when it changes)."""
    return default_reader().reload(force=True)


__all__ = ["FlagReader", "get_environment", "is_flag_enabled", "reload_flags"]
