"""rollguard: ship risky backend changes behind a canary that watches Prometheus and rolls back
on its own, and keep every runtime failure as queryable data."""

__version__ = "0.2.0"

GROUP = "rollguard.io"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"

# rollguard.operator and rollguard.api live in their own folders of a checkout
# (operator/rollguard/operator, api/rollguard/api), which an editable install puts on sys.path;
# a wheel merges them into this folder.
__path__ = __import__("pkgutil").extend_path(__path__, __name__)
