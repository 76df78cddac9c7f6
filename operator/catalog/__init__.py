"""FailureCatalog reconciliation: a pure planning core (``core``) and its Kubernetes shell (``kube``)."""
