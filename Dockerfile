# syntax=docker/dockerfile:1.7
# The one image of todo-platform: every function, picked at run time by FUNCTION_TARGET.
#
#   builder  downloads the pinned, hash-checked runtime wheels (requirements.lock), builds
#            the project's own wheel and installs both into /opt/venv; binary wheels only,
#            so no compiler is needed in either stage.
#   runtime  the same slim Python with /opt/venv copied in: no pip, no compilers, no
#            pgserver (local runs only), a numeric non-root user, and nothing written at
#            run time except /tmp (an emptyDir in the Knative Services).
#
# Built and pushed only by .github/workflows/release.yml; see docs/deployment.md.

# One pin for both stages; the venv's interpreter path must be identical in both.
ARG PYTHON_IMAGE=python:3.11.14-slim-bookworm

FROM ${PYTHON_IMAGE} AS builder
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1
WORKDIR /src
# A venv without pip: the builder's pip installs into it with --python.
RUN python -m venv --without-pip /opt/venv

# Dependencies first, in their own layer, so a code change does not refetch them.
COPY requirements.lock ./
RUN python -m pip wheel --require-hashes --only-binary=:all: \
        --wheel-dir /wheels -r requirements.lock \
 && python -m pip --python /opt/venv/bin/python install --no-index --find-links /wheels \
        --require-hashes --only-binary=:all: -r requirements.lock

# Bytecode is compiled once here and never checked against the source: the root filesystem
# is read-only at run time, so without it every cold start would recompile in memory.
COPY pyproject.toml README.md ./
COPY functions ./functions
COPY events ./events
RUN python -m pip wheel --no-deps --wheel-dir /dist . \
 && python -m pip --python /opt/venv/bin/python install --no-index --no-deps /dist/*.whl \
 && /opt/venv/bin/python -m compileall -q --invalidation-mode unchecked-hash /opt/venv

FROM ${PYTHON_IMAGE} AS runtime
ARG VERSION=0.0.0
ARG REVISION=unknown
LABEL org.opencontainers.image.title="todo-platform" \
      org.opencontainers.image.description="todo-platform functions; FUNCTION_TARGET picks one." \
      org.opencontainers.image.source="https://github.com/todo-platform/todo-platform" \
      org.opencontainers.image.url="https://github.com/todo-platform/todo-platform" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}"

# The image's own pip is not needed at run time; removing it drops its CVE surface.
RUN python -m pip uninstall --yes pip setuptools wheel \
 && groupadd --gid 65532 nonroot \
 && useradd --uid 65532 --gid 65532 --no-create-home --home-dir /tmp \
        --shell /usr/sbin/nologin nonroot

COPY --from=builder /opt/venv /opt/venv

ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    HOME=/tmp \
    PORT=8080 \
    THREADS=8
WORKDIR /tmp
USER 65532:65532
EXPOSE 8080

# todo-function (functions/serve.py) reads FUNCTION_TARGET (set per Knative Service) and
# serves it as the registry says: functions-framework with --source functions/main.py for
# the WSGI functions (PORT, THREADS), uvicorn for the ASGI one (mcp; docs/mcp.md).
# The migration Job overrides the command with `todo-platform migrate`.
CMD ["todo-function"]
