"""Service settings, from the environment (prefix ``ROLLGUARD_API_``) or passed explicitly."""

from __future__ import annotations

import os
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from rollguard.sdk import limits

DEFAULT_CATALOG_PATH = Path("/etc/rollguard/catalog/catalog.json")


def default_sqlite_path() -> Path:
    """Where the embedded laptop database lives when no database URL is given."""
    base = Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share")
    return base / "rollguard" / "failures.db"


def default_database_url() -> str:
    return f"sqlite:///{default_sqlite_path()}"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="ROLLGUARD_API_", extra="ignore")

    database_url: str = Field(default_factory=default_database_url,
                              description="SQLAlchemy URL; postgresql+psycopg://... in production")
    catalog_path: Path = Field(default=DEFAULT_CATALOG_PATH,
                               description="catalog.json mounted from the FailureCatalog ConfigMap")
    migrate_on_start: bool = True
    max_batch: int = Field(default=1000, ge=1, le=10000)
    default_limit: int = Field(default=100, ge=1, le=1000)
    max_limit: int = Field(default=1000, ge=1, le=10000)
    pool_size: int = Field(default=10, ge=1)
    max_body_bytes: int = Field(default=limits.MAX_BODY_BYTES, ge=1024, le=64 * 1024 * 1024,
                                description="Largest request body; larger ones get 413 before being parsed")
    retry_after_seconds: int = Field(default=5, ge=1, le=3600,
                                     description="Retry-After of a 503 (database unavailable)")
    db_connect_timeout: int = Field(default=5, ge=1, le=300,
                                    description="Seconds to wait for a new database connection")

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")
