"""rollguard: ship risky backend changes behind a canary that watches Prometheus and rolls back
on its own, and keep every runtime failure as queryable data."""

__version__ = "0.1.0"

GROUP = "rollguard.io"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"
