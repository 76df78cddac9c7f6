# syntax=docker/dockerfile:1
# One image for the operator, the failures API, the jobs and the CLI: the entrypoint is
# `rollguard` and the arguments choose (`operator run`, `api serve`, `api migrate`,
# `failures aggregate`, ...). Kubernetes probes check health (the chart's), so no HEALTHCHECK.
#
# Everything in it comes from Debian's packages and from PyPI: Debian's python3, and a
# virtualenv with rollguard[all]. `docker build .` starts from Debian's slim image;
# hack/build-image.sh builds these same stages without a Docker engine (buildah), from the same
# Debian packages laid out by mmdebstrap instead of pulled: it passes --build-arg
# BASE_IMAGE=<that image>, which already holds BASE_PACKAGES, and every stage runs unchanged.
#
# Layers, the slow one first: the dependencies (from requirements-image.txt alone, so only a
# change there rebuilds them), then rollguard itself (a code change rebuilds only that layer).

# A date-stamped Debian 12 slim image; pin it further by digest in CI/releases:
#   docker build --build-arg BASE_IMAGE=debian:bookworm-20250520-slim@sha256:...
ARG BASE_IMAGE=debian:bookworm-20250520-slim
# What the image takes from Debian, on top of its essential packages (hack/build-image.sh reads
# this line to make the same base).
ARG BASE_PACKAGES="python3"

# ---- base: Debian's python3, nothing else ----
FROM ${BASE_IMAGE} AS base
ARG BASE_PACKAGES
# Installed unless the base image holds them already (the Docker-free base does).
RUN missing=""; \
    for p in ${BASE_PACKAGES}; do \
      [ "$(dpkg-query --show --showformat='${db:Status-Status}' "$p" 2>/dev/null)" = installed ] || missing="$missing $p"; \
    done; \
    if [ -n "$missing" ]; then \
      apt-get update \
      && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $missing \
      && rm -rf /var/lib/apt/lists/*; \
    fi

# ---- build: a virtualenv without pip; pip runs from Debian's pip wheel, outside it ----
FROM base AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 PYTHONDONTWRITEBYTECODE=1
# python3-venv (and the pip wheel it brings) exists in the build stages only.
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends python3-venv \
 && rm -rf /var/lib/apt/lists/* \
 && python3 -m venv --without-pip /opt/rollguard \
 && ln -s /usr/share/python-wheels/pip-*.whl /pip.whl
WORKDIR /src

# ---- deps: rollguard[all]'s dependencies, pinned in requirements-image.txt (hack/lock-image.sh) ----
FROM build AS deps
COPY requirements-image.txt ./
# Installed as pinned, with no resolving (--no-deps: the file holds every package); wheels
# wherever PyPI has them (drain3 is a pure-Python sdist); no stage has a compiler, so nothing
# native is ever built. The bytecode is compiled here (hash-checked, reproducible) because the
# runtime's root filesystem is read-only (the chart's securityContext).
# A build machine behind a TLS-inspecting proxy can lend pip its CA bundle as the build secret
# `ca-bundle` (hack/build-image.sh does when PIP_CERT or SSL_CERT_FILE is set); a secret mount
# never reaches a layer.
RUN --mount=type=secret,id=ca-bundle \
    if [ -s /run/secrets/ca-bundle ]; then export PIP_CERT=/run/secrets/ca-bundle; fi \
 && /opt/rollguard/bin/python /pip.whl/pip install --no-compile --no-deps --prefer-binary -r requirements-image.txt \
 && /opt/rollguard/bin/python -m compileall -q -j 0 --invalidation-mode unchecked-hash /opt/rollguard/lib

# ---- code: rollguard itself, installed into the virtualenv's paths under /out ----
FROM deps AS code
# .dockerignore keeps the context to what the wheel needs (no .git, .venv, tests, charts).
COPY . .
# `pip install '.[all]'` finds every dependency in place (deps) and adds rollguard: the wheel carries every import
# package (rollguard, and rollguard.operator and rollguard.api from their own folders) plus the
# package data, and leaves the test launchers (rollguard.localenv, rollguard.demo) out.
RUN --mount=type=secret,id=ca-bundle \
    if [ -s /run/secrets/ca-bundle ]; then export PIP_CERT=/run/secrets/ca-bundle; fi \
 && /opt/rollguard/bin/python /pip.whl/pip install --no-compile --root /out '.[all]' \
 && /opt/rollguard/bin/python -m compileall -q -j 0 --invalidation-mode unchecked-hash -s /out -p / /out/opt \
 && cp -a /out/. / \
 && /opt/rollguard/bin/python -c "import rollguard.operator.main, rollguard.api.app, rollguard.failures.aggregate, rollguard.cli.main"

# ---- runtime: the virtualenv and nothing else; no compiler, no pip, not root ----
FROM base AS runtime
LABEL org.opencontainers.image.title="rollguard" \
      org.opencontainers.image.description="rollguard operator, failures API, jobs and CLI" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.source="https://github.com/rollguard/rollguard"
# uid/gid 10001 match the chart's securityContext (runAsUser/runAsGroup/fsGroup).
RUN groupadd --system --gid 10001 rollguard \
 && useradd --system --uid 10001 --gid 10001 --home-dir /home/rollguard --create-home \
      --shell /usr/sbin/nologin rollguard
# PATH is spelled out: the Docker-free base carries no environment to extend.
ENV PATH=/opt/rollguard/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    HOME=/home/rollguard
WORKDIR /home/rollguard
USER 10001:10001
EXPOSE 8000 8080 8081
ENTRYPOINT ["rollguard"]
CMD ["--help"]
# The files last (owned by root, whatever USER says: the process cannot change them): the
# dependencies' layer, then the code's, so a code change rebuilds one small layer and nothing after it.
COPY --from=deps /opt/rollguard /opt/rollguard
COPY --from=code /out/ /
