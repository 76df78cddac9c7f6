"""rollguard.api: the failures service (FastAPI + SQLAlchemy 2 + Alembic).

`create_app(settings)` builds the ASGI app; `rollguard api serve` runs it with uvicorn.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from fastapi import FastAPI

    from rollguard.api.settings import Settings


def create_app(settings: Settings | None = None, **kwargs: Any) -> FastAPI:
    # Imported lazily: `import rollguard.api.settings` (CLI, migrations) must not pull FastAPI in.
    from rollguard.api.app import create_app as _create_app

    return _create_app(settings, **kwargs)


__all__ = ["create_app"]
