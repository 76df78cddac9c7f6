"""The TrafficRouter interface: one implementation per ingress / mesh, as Flagger's pkg/router."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol


@dataclass(frozen=True)
class RouteTarget:
    """Where traffic goes: the namespace, the stable and canary Services, the owner of what we create."""

    namespace: str
    stable_service: str
    canary_service: str
    owner: dict[str, Any] | None = None


class TrafficRouter(Protocol):
    def set_weight(self, weight: int) -> None:
        """Send ``weight`` % to the canary Service; 0 sends everything to stable. Idempotent."""

    def get_weight(self) -> int:
        """The canary weight the routing objects carry now (0 when there is no canary route)."""

    def verify(self) -> None:
        """Raise LookupError naming the field when the stable route cannot be used."""

    def remove(self) -> None:
        """Remove every trace of the canary from the routing objects. Idempotent."""
