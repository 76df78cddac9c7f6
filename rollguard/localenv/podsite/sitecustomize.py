"""Python runs this at start-up in every process the pod runner starts (it is first on their
``PYTHONPATH``): the pod's own network, for Python servers.

In a cluster each pod has its own network namespace, so a server that binds every address
(``0.0.0.0``, as the chart's API and the operator's probes do) listens on its pod's address only,
and two pods may use the same port. The pod runner's processes share the machine's network: here
such a bind takes the pod's address (``status.podIP``, from :data:`POD_IP_ENV`) instead, so the
pod answers on its address, as in a cluster, and its replicas do not collide. Binds to a named
address, and processes that are not Python, are unchanged.
"""

from __future__ import annotations

import os
import socket
from typing import Any

POD_IP_ENV = "ROLLGUARD_LOCALENV_POD_IP"  # the name rollguard.localenv.podrunner sets

_pod_ip = os.environ.get(POD_IP_ENV)
if _pod_ip:
    _bind = socket.socket.bind

    def _bind_pod_address(self: socket.socket, address: Any) -> None:
        if self.family == socket.AF_INET and isinstance(address, tuple) and address[0] in ("", "0.0.0.0"):
            address = (_pod_ip, *address[1:])
        _bind(self, address)

    socket.socket.bind = _bind_pod_address  # type: ignore[method-assign,assignment]
