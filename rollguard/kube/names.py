"""Every name rollguard gives to things on Kubernetes objects, in one place.

Labels, annotations, volume names, mount paths, name suffixes and field managers are part of
rollguard's contract with users (``kubectl get -l``, Argo CD ``ignoreDifferences``, PodMonitor
relabelling, ``managedFields``): changing one here changes it everywhere at once. Pure
constants and string functions; no imports, so the SDK and the model may read it too.
"""

from __future__ import annotations

# ---------------------------------------------------------------- canary objects
# On both sides of a comparison: rollguard sets it itself, so one PromQL template selects either side.
# The canary's pods carry it from their template; the stable target's pods get it by a label patch
# on the pods themselves while a rollout is live (never through the Deployment's template, which
# would restart them).
TRACK_LABEL = "rollguard.io/track"
TRACK_CANARY = "canary"
TRACK_STABLE = "stable"
# On the canary copy of a target (and the rollout's other canary objects): the FailureCatalog and
# FeatureFlag controllers leave objects with this label alone, so the canary keeps the catalog
# version and flag files its rollout gave it.
CANARY_OF_LABEL = "rollguard.io/canary-of"
SMOKE_OF_LABEL = "rollguard.io/smoke-of"
# On an HTTPRoute while rollouts route through it: JSON, "<rule index>/<canary Service>" ->
# {"weight": the stable backendRef's weight before the rollout (absent: it had none),
#  "percent": the canary share last set}. The route is put back from it; gone once no rollout is.
ROUTE_WEIGHTS_ANNOTATION = "rollguard.io/original-weights"
CANARY_SUFFIX = "-canary"


def canary_name(name: str) -> str:
    """The canary counterpart of a stable object's name (Deployment, Service, Ingress, selector value)."""
    return f"{name}{CANARY_SUFFIX}"


def canary_flags_config_map(canary_deployment: str) -> str:
    """The canary's own flags ConfigMap, next to the canary Deployment ``canary_deployment``."""
    return f"{canary_deployment}-flags"


def smoke_job(rollout: str, attempt: int) -> str:
    """The smoke Job of one attempt of a rollout (a valid, at most 63-character name)."""
    return f"{rollout}-smoke-{attempt}"[:63].rstrip("-")


# ---------------------------------------------------------------- CanaryRollout annotations
REQUEST_ANNOTATION = "rollguard.io/request"  # one of models.canary.REQUEST_ACTIONS
REQUEST_ID_ANNOTATION = "rollguard.io/request-id"  # any new value: a new request
REQUEST_BY_ANNOTATION = "rollguard.io/request-by"  # who made the request (a manual promote's report names them)
SIGNOFF_ANNOTATION = "rollguard.io/signoff"

# ---------------------------------------------------------------- FailureCatalog
CATALOG_NAME_ANNOTATION = "catalog.rollguard.io/name"  # pod template: which catalog is mounted
CATALOG_HASH_ANNOTATION = "catalog.rollguard.io/hash"  # pod template: which version (rolls the pods)
CATALOG_LABEL = CATALOG_NAME_ANNOTATION  # on the rendered ConfigMaps: whose version it is
CATALOG_FULL_HASH_ANNOTATION = "catalog.rollguard.io/content-hash"  # on the rendered ConfigMaps
CATALOG_VOLUME = "rollguard-catalog"
CATALOG_MOUNT_DIR = "/etc/rollguard/catalog"
CATALOG_FILE = "catalog.json"
CATALOG_MOUNT_PATH = f"{CATALOG_MOUNT_DIR}/{CATALOG_FILE}"

# ---------------------------------------------------------------- FeatureFlag
FLAGS_VOLUME = "rollguard-flags"
FLAGS_MOUNT_DIR = "/etc/rollguard/flags"
FLAGS_CONFIG_MAP_PREFIX = "rollguard-flags-"  # + environment
FLAGS_ENVIRONMENT_LABEL = "rollguard.io/flags-environment"
FLAGS_HASH_ANNOTATION = "rollguard.io/flags-hash"
CHANGED_BY_ANNOTATION = "rollguard.io/changed-by"  # who made a change through the CLI


def flags_config_map(environment: str) -> str:
    """The ConfigMap holding one environment's flag files."""
    return f"{FLAGS_CONFIG_MAP_PREFIX}{environment}"


MANAGED_BY_LABEL = "app.kubernetes.io/managed-by"
MANAGED_BY = "rollguard"

# ---------------------------------------------------------------- field managers
# One per writer, never a shared "rollguard": server-side apply removes every field a manager
# owned and no longer applies, so two controllers sharing one name would strip each other's
# volumes from the same Deployment; and `managedFields` then says which part changed what.
CATALOG_FIELD_MANAGER = "rollguard-catalog"
FLAGS_FIELD_MANAGER = "rollguard-flags"
CANARY_FIELD_MANAGER = "rollguard-canary"
CLI_FIELD_MANAGER = "rollguard-cli"
CLI_CANARY_FIELD_MANAGER = "rollguard"  # `rollguard canary run` applies the CanaryRollout users wrote
OPERATOR_COMPONENT = "rollguard-operator"  # Event source, and the actor of the operator's own changes
