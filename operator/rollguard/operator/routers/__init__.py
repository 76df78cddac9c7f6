"""Traffic routers: one module per provider, chosen by ``spec.traffic.provider``.

Adding a provider: write ``operator/routers/<provider>.py`` with a class implementing
:class:`~rollguard.operator.routers.base.TrafficRouter` and add one line to :func:`router_for`.
"""

from __future__ import annotations

from kubernetes import client

from rollguard.models.canary import Traffic
from rollguard.operator.routers.base import RouteTarget, TrafficRouter


def router_for(api: client.ApiClient, traffic: Traffic, target: RouteTarget) -> TrafficRouter:
    if traffic.provider == "nginx":
        from rollguard.operator.routers.nginx import NginxRouter
        assert traffic.ingress is not None
        return NginxRouter(api, target, traffic.ingress.name)
    from rollguard.operator.routers.gateway_api import GatewayAPIRouter
    assert traffic.http_route is not None
    return GatewayAPIRouter(api, target, traffic.http_route.name, traffic.http_route.rule_index,
                            traffic.http_route.port)


__all__ = ["RouteTarget", "TrafficRouter", "router_for"]
