# The model server image: gunicorn (deploy/gunicorn.conf.py) serving service.wsgi:app.
#
#   docker build -t model-serving .                  # production image (last stage, `runtime`)
#   docker build --target test -t model-serving:test .   # + make, nginx, prometheus: `make test`
#
# The model is NOT baked in: mount a folder holding pipeline.pkl and pipeline.schema.json
# read-only at /srv/binary (docker-compose.yml does). nginx runs in its own container.

# Debian release pinned so the test stage's apt packages (nginx, prometheus, docker-compose
# 1.29.2) are the ones .ci/run installs on a bookworm machine.
ARG PYTHON_IMAGE=python:3.11-slim-bookworm

# ---- base: interpreter, runtime dependencies, unprivileged user ----------------------------
FROM ${PYTHON_IMAGE} AS base

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1

RUN groupadd --gid 10001 app \
 && useradd --uid 10001 --gid app --create-home --shell /usr/sbin/nologin app

WORKDIR /app

# Dependencies first, from the lock alone (the versions and hashes `make` installs too):
# editing service/ or deploy/ reuses this layer, and only `make lock` reinstalls numpy,
# scikit-learn and pandas.
COPY requirements/runtime.txt requirements/
RUN pip install --no-cache-dir --require-hashes --no-deps -r requirements/runtime.txt

# ---- test: everything `make test` needs (built only with --target test) -------------------
FROM base AS test

# The Makefile's TEST_TOOLS, which `make test` checks first, and make. nginx, gettext-base
# (envsubst), iproute2 (ss): the stack tests; prometheus: promtool and the scrape test; wrk:
# the soak test (bench/); docker-compose: validates docker-compose.yml (no engine needed);
# curl: the /usage example is run as printed; haproxy: the fleet tests (deploy/fleet.py).
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      make nginx prometheus gettext-base iproute2 wrk docker-compose curl haproxy openssl \
 && rm -rf /var/lib/apt/lists/*

# The Makefile uses .venv/: build it here, seeing the runtime dependencies installed above,
# with the rest of the dev lock on top (again from the lock alone, for the layer cache).
COPY requirements/dev.txt requirements/
RUN python -m venv --system-site-packages .venv \
 && .venv/bin/pip install --no-cache-dir --require-hashes --no-deps -r requirements/dev.txt

# The whole repository minus .dockerignore: tests, Makefile, deploy/, compose file...
COPY --chown=app:app . .
# The stamp tells make the venv is current, so `make test` does not rebuild it (no network).
RUN .venv/bin/pip install --no-cache-dir --no-deps -e . \
 && touch .venv/.installed-stamp \
 && chown app:app /app

USER app
CMD ["make", "test"]

# ---- runtime: the production image (the default target: keep it last) --------------------
FROM base AS runtime

COPY pyproject.toml ./
COPY service/ service/
RUN pip install --no-cache-dir --no-deps . \
 && rm -rf build ./*.egg-info
COPY deploy/ deploy/

# What the image contains, for `docker inspect` and for GET /model (LOCK_SHA256): the lock
# it was built from and the versions a pickle depends on. make compose-up passes them, read
# from requirements/runtime.txt (deploy/compose.py, image_facts); a bare `docker build`
# leaves them "unknown".
ARG LOCK_SHA256=unknown \
    SKLEARN_VERSION=unknown \
    PANDAS_VERSION=unknown \
    NUMPY_VERSION=unknown \
    SKLEARN_PANDAS_VERSION=unknown \
    PYTHON_MINOR=3.11
LABEL org.opencontainers.image.title="model-serving" \
      io.model-serving.lock-sha256="${LOCK_SHA256}" \
      io.model-serving.python="${PYTHON_MINOR}" \
      io.model-serving.scikit-learn="${SKLEARN_VERSION}" \
      io.model-serving.pandas="${PANDAS_VERSION}" \
      io.model-serving.numpy="${NUMPY_VERSION}" \
      io.model-serving.sklearn-pandas="${SKLEARN_PANDAS_VERSION}"
ENV LOCK_SHA256=${LOCK_SHA256}

# Set before Python starts: prometheus_client picks its multiprocess storage at import time.
# One BLAS/OpenMP thread per gunicorn worker (workers = cores). The model is mounted at
# /srv/binary; downloads are handed to nginx's internal /_artifacts/ location.
ENV PROMETHEUS_MULTIPROC_DIR=/tmp/prometheus \
    OMP_NUM_THREADS=1 \
    OPENBLAS_NUM_THREADS=1 \
    MKL_NUM_THREADS=1 \
    BIND=0.0.0.0:8000 \
    MODEL_PATH=/srv/binary/pipeline.pkl \
    STORE_DIR=/srv/store \
    DOWNLOAD_ACCEL_PREFIX=/_artifacts/
# The model store: mount a volume here (compose's model-store); a new volume takes this
# folder's owner, so the unprivileged app can write versions into it.
RUN mkdir -p /srv/store && chown 10001:10001 /srv/store

USER 10001:10001
EXPOSE 8000

# Readiness, not liveness: healthy only once the model loaded and its warm-up prediction
# passed. urlopen raises on a refused connection and on any non-2xx, so both exit 1.
# start-period covers loading a large pipeline; failures during it do not count.
# podman/buildah keep it only in Docker-format images (make compose-up builds with
# BUILDAH_FORMAT=docker); an OCI image has no HEALTHCHECK.
HEALTHCHECK --interval=10s --timeout=5s --start-period=60s --retries=3 \
  CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/readyz', timeout=4)"]

# Exec form: gunicorn is PID 1 and gets SIGTERM directly for a graceful stop.
CMD ["gunicorn", "-c", "deploy/gunicorn.conf.py", "service.wsgi:app"]
