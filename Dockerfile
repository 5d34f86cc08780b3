# The image of one service (central, engine, monitor, driver or ocpp), built from the
# repository root so the shared libs/evproto is in the context:
#   docker build --build-arg SERVICE=central -t evcharging/evcentral:0.1.0 .
# `make images` builds all five. Nothing here needs a registry but the base image,
# which `make base-image` makes from Debian packages (BASE_IMAGE=...) where no
# registry is reachable. An extra CA bundle for TLS-inspecting proxies is a
# BuildKit secret (`--secret id=ca,src=bundle.pem`): mounted only while the
# builder downloads from PyPI, never stored in a layer.
ARG BASE_IMAGE=python:3.11-slim-bookworm

FROM ${BASE_IMAGE} AS builder
ARG SERVICE
ARG UV_VERSION=0.13.9
ENV UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_PYTHON_DOWNLOADS=0 \
    UV_PROJECT_ENVIRONMENT=/app/.venv \
    PIP_DISABLE_PIP_VERSION_CHECK=1
# uv from PyPI at the pinned version, in a throwaway venv of the builder stage.
RUN --mount=type=secret,id=ca \
    if [ -f /run/secrets/ca ]; then export PIP_CERT=/run/secrets/ca; fi \
 && python3 -m venv /opt/uv \
 && /opt/uv/bin/pip install --no-cache-dir --quiet "uv==${UV_VERSION}"
WORKDIR /src
# Third-party dependencies first, from the lock file alone: this layer is
# rebuilt only when uv.lock changes, not on every source edit.
RUN --mount=type=cache,target=/root/.cache/uv \
    --mount=type=secret,id=ca \
    --mount=type=bind,source=uv.lock,target=/src/uv.lock \
    --mount=type=bind,source=pyproject.toml,target=/src/pyproject.toml \
    if [ -f /run/secrets/ca ]; then export SSL_CERT_FILE=/run/secrets/ca; fi \
 && /opt/uv/bin/uv sync --frozen --no-dev --no-install-workspace --package "ev${SERVICE}"
# Then the shared library and this service, installed (not editable) into the venv.
COPY pyproject.toml uv.lock ./
COPY libs/evproto libs/evproto
COPY services/${SERVICE} services/${SERVICE}
RUN --mount=type=cache,target=/root/.cache/uv \
    --mount=type=secret,id=ca \
    if [ -f /run/secrets/ca ]; then export SSL_CERT_FILE=/run/secrets/ca; fi \
 && /opt/uv/bin/uv sync --frozen --no-dev --no-editable --package "ev${SERVICE}" \
 && ln -s "ev${SERVICE}" /app/.venv/bin/ev-service

# The runtime image: the virtualenv only (no uv, no build tools, no caches).
FROM ${BASE_IMAGE}
ARG SERVICE
ARG VERSION=0.1.0
LABEL org.opencontainers.image.title="ev${SERVICE}" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.description="EV Charging Network: ev${SERVICE}"
RUN groupadd --gid 10001 ev \
 && useradd --uid 10001 --gid 10001 --no-create-home --home-dir /nonexistent \
      --shell /usr/sbin/nologin ev
COPY --from=builder /app/.venv /app/.venv
ENV PATH=/app/.venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1
WORKDIR /app
USER 10001:10001
# ev-service links to the service's console script (ev${SERVICE}); an exec-form
# ENTRYPOINT cannot expand a build argument, and its programs name themselves.
ENTRYPOINT ["/app/.venv/bin/ev-service"]
