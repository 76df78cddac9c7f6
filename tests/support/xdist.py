"""Test groups that must share one pytest-xdist worker (``--dist loadgroup``)."""

from __future__ import annotations

import pytest

# What a user runs with the documented default ports (the failures API on 8080, the operator's
# metrics on 8081): the docs walk-throughs and the demo. One machine has one port 8080, so these
# run one after the other on one worker, as one reader would run them.
DEFAULT_PORTS = pytest.mark.xdist_group("default-ports")

# The heavy end-to-end worlds: many pods, Prometheus and user traffic at once. They take their
# turn on that same worker rather than run beside the demo, whose latency check would judge a
# canary starved by another world's load (the demo then rolls back on latency, correctly).
HEAVY_E2E = DEFAULT_PORTS
