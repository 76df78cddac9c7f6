# syntax=docker/dockerfile:1
# One image for the operator, the failures API and the CLI: the entrypoint is `rollguard` and
# the arguments choose (`operator run`, `api serve`, `api migrate`, `failures aggregate`, ...).
# Kubernetes probes check health (the chart's liveness/readiness), so there is no HEALTHCHECK.
#
# The base is pinned to an exact patch release of the Debian 12 slim image; CI/releases pin
# it further by digest: docker build --build-arg PYTHON_IMAGE=python:3.11.14-slim-bookworm@sha256:...
ARG PYTHON_IMAGE=python:3.11.14-slim-bookworm

# ---- build: resolve and install the package into a self-contained virtualenv ----
FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 PYTHONDONTWRITEBYTECODE=1
WORKDIR /src
RUN python -m venv /opt/rollguard
# .dockerignore keeps the context to what the wheel needs (no .git, .venv, tests, charts).
COPY . .
# The wheel carries every import package (rollguard, rollguard.operator, rollguard.api; the
# latter two from their own folders, operator/rollguard and api/rollguard) plus the package data.
# `all`: every command's extra (operator, api, jobs, cli); `pip install rollguard` alone is the SDK.
RUN /opt/rollguard/bin/pip install '.[all]' \
 && /opt/rollguard/bin/python -c "import rollguard.operator.main, rollguard.api.app, rollguard.failures.aggregate, rollguard.cli.main" \
 && /opt/rollguard/bin/pip uninstall -y pip setuptools wheel \
 && find /opt/rollguard -name '__pycache__' -prune -exec rm -rf {} +

# ---- runtime: the virtualenv and nothing else; no compiler, no pip, not root ----
FROM ${PYTHON_IMAGE} AS runtime
LABEL org.opencontainers.image.title="rollguard" \
      org.opencontainers.image.description="rollguard operator, failures API and CLI" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.source="https://github.com/rollguard/rollguard"
# uid/gid 10001 match the chart's securityContext (runAsUser/runAsGroup/fsGroup).
RUN groupadd --system --gid 10001 rollguard \
 && useradd --system --uid 10001 --gid 10001 --home-dir /home/rollguard --create-home \
      --shell /usr/sbin/nologin rollguard \
 && (python -m pip uninstall -y pip setuptools wheel || true) \
 && rm -rf /root/.cache
COPY --from=build /opt/rollguard /opt/rollguard
ENV PATH=/opt/rollguard/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    HOME=/home/rollguard
WORKDIR /home/rollguard
USER 10001:10001
EXPOSE 8000 8080 8081
ENTRYPOINT ["rollguard"]
CMD ["--help"]
