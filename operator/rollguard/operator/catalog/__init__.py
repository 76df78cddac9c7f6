"""FailureCatalog reconciliation: a pure planning core (``core``) and its Kubernetes side (``kube``)."""
