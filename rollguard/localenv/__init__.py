"""Real local services for tests and the demo: a node-less Kubernetes control plane (etcd,
kube-apiserver, kube-controller-manager), PostgreSQL and Prometheus, all on loopback.

Nothing here is mocked: each launcher starts the real binary, waits until it answers, and
stops it again. The pytest fixtures in ``tests/conftest.py`` and the ``hack/`` scripts are
thin shells around these classes.
"""
