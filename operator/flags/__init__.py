"""The imperative shell of feature flags: Kubernetes I/O and the namespace reconciler."""
