"""The FeatureFlag controller: Kubernetes I/O and the namespace reconciler."""
