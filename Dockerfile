# syntax=docker/dockerfile:1
# The operator image. The default command is `inventory-sync run` (the kopf operator).
#
#   docker build -t inventory-sync-operator:0.1.0 \
#     --build-arg VERSION=0.1.0 --build-arg REVISION="$(git rev-parse HEAD)" .
#
# Two stages: the builder makes a self-contained virtualenv in /opt/venv; the runtime is the
# slim Python image plus that directory, running as a numeric non-root user. Nothing is written
# at run time outside /tmp, so the pod can run with a read-only root filesystem (the Helm chart
# mounts an emptyDir on /tmp). tests/unit/test_image_venv.py runs the builder's venv commands
# (between the "venv-build" markers) verbatim and imports the result.

ARG PYTHON_IMAGE=python:3.11-slim-bookworm

# --------------------------------------------------------------------------- builder
FROM ${PYTHON_IMAGE} AS builder

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_ROOT_USER_ACTION=ignore \
    PYTHONDONTWRITEBYTECODE=1
ARG VENV=/opt/venv

WORKDIR /src
COPY pyproject.toml README.md ./
COPY operator/ operator/

# The venv gets no pip or setuptools of its own: the base image's pip installs into it.
# venv-build:begin
RUN python -m venv --without-pip "$VENV" \
    && python -m pip --python "$VENV/bin/python" install --no-compile . \
    && "$VENV/bin/python" -m compileall -q -j 0 "$VENV/lib" \
    && "$VENV/bin/inventory-sync" --version
# venv-build:end

# --------------------------------------------------------------------------- runtime
FROM ${PYTHON_IMAGE} AS runtime

ARG VERSION=0.1.0
ARG REVISION=unknown
ARG CREATED=1970-01-01T00:00:00Z
LABEL org.opencontainers.image.title="inventory-sync-operator" \
      org.opencontainers.image.description="Kubernetes operator that syncs HPE GreenLake, Aruba Central and Hedgehog fabric inventory into PostgreSQL" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.created="${CREATED}" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.documentation="docs/deploy.md" \
      org.opencontainers.image.base.name="${PYTHON_IMAGE}"

# 65532 is the conventional "nonroot" UID/GID; the chart's securityContext uses the same
# numbers, so runAsNonRoot can verify them without a name lookup.
RUN groupadd --system --gid 65532 inventory-sync \
    && useradd --system --uid 65532 --gid 65532 --no-create-home \
       --home-dir /tmp --shell /usr/sbin/nologin inventory-sync

COPY --from=builder --chown=0:0 /opt/venv /opt/venv

# Bytecode is precompiled in the builder: nothing tries to write .pyc files next to the code.
# HOME and caches point at /tmp, the one writable path (an emptyDir in the chart).
ENV PATH="/opt/venv/bin:${PATH}" \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    HOME=/tmp \
    XDG_CACHE_HOME=/tmp/.cache \
    TMPDIR=/tmp

USER 65532:65532
WORKDIR /tmp

# 8080: kopf liveness /healthz; 9090: Prometheus /metrics.
EXPOSE 8080 9090

ENTRYPOINT ["/opt/venv/bin/inventory-sync"]
CMD ["run"]
