# syntax=docker/dockerfile:1
# Prêt à dépenser: API (port 8000) + dashboard (port 8080) in one image.
#
#   docker build -t pret-a-depenser .                                    # demo data, 20,000 clients
#   docker build --build-arg CLIENTS=5000 -t pret-a-depenser .
#   docker build --build-arg DATA_SRC=kaggle -t pret-a-depenser .        # the real CSVs in ./kaggle/
#   docker run --rm -p 8000:8000 -p 8080:8080 \
#       -e CREDIT_API_KEYS='officer-secret:officer,admin-secret:admin' \
#       -e CREDIT_UI_USERS="$(credit ui-account agent --role officer)" pret-a-depenser
#
# Stage "build" has gcc and the training stack; it runs the same `credit` commands as by hand
# (generate -> ingest -> train -> compile). Stage "runtime" gets only the virtualenv, the source
# (app/, ui/, sql/), the SQLite database and the compiled/ model folder: no compiler, no CSVs,
# no build files, no keys. Keys come from the environment at run time.

ARG PYTHON_IMAGE=python:3.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
# gcc + libc headers compile the model; sqlite3ext.h is needed by app/scoring/native/score_ext.c
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends gcc libc6-dev libsqlite3-dev libgomp1 \
    && rm -rf /var/lib/apt/lists/*
ENV VIRTUAL_ENV=/opt/venv \
    PATH=/opt/venv/bin:$PATH \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1
RUN python -m venv /opt/venv
WORKDIR /app
# dependencies first (cached while only the source changes)
COPY pyproject.toml README.md requirements.lock ./
COPY app/__init__.py app/__init__.py
COPY ui/__init__.py ui/__init__.py
RUN pip install -c requirements.lock . && pip uninstall -y pret-a-depenser
COPY app app
COPY ui ui
COPY sql sql
COPY docker docker
# editable: the runtime stage runs the source in /app (app/sql links to /app/sql)
RUN pip install --no-deps -e .

ARG CLIENTS=20000
ARG SEED=42
# a folder of the build context with the eight Home Credit CSVs; the default holds none -> generate
ARG DATA_SRC=docker/no-data
COPY ${DATA_SRC}/ /build/user-data/
ENV CREDIT_DB=/srv/data/credit.db \
    CREDIT_MODEL_DIR=/srv/compiled \
    CREDIT_DATA_DIR=/build/raw
RUN if [ -f /build/user-data/application_train.csv ]; then \
        mv /build/user-data "$CREDIT_DATA_DIR"; \
    else \
        credit generate --clients "$CLIENTS" --seed "$SEED" --no-progress; \
    fi \
    && credit ingest --no-progress \
    && credit train --seed "$SEED" \
    && credit compile --no-tl2cgen \
    && rm -rf "$CREDIT_MODEL_DIR/build" \
    && credit sql "SELECT count(*), avg(score(client_id)) FROM clients"


FROM ${PYTHON_IMAGE} AS runtime
LABEL org.opencontainers.image.title="pret-a-depenser" \
      org.opencontainers.image.description="Credit scoring API (8000) and dashboard (8080)"
# libgomp1: OpenMP runtime of LightGBM (explanations); no compiler here
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends libgomp1 \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --system --gid 10001 credit \
    && useradd --system --uid 10001 --gid credit --home-dir /app --shell /usr/sbin/nologin credit
ENV VIRTUAL_ENV=/opt/venv \
    PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    CREDIT_DB=/srv/data/credit.db \
    CREDIT_MODEL_DIR=/srv/compiled \
    CREDIT_HOST=0.0.0.0 \
    CREDIT_PORT=8000 \
    CREDIT_UI_HOST=0.0.0.0 \
    CREDIT_UI_PORT=8080
COPY --from=build /opt/venv /opt/venv
COPY --from=build /app /app
# the database is written at run time (prediction log, WAL): owned by the service user
COPY --from=build --chown=10001:10001 /srv/data /srv/data
COPY --from=build /srv/compiled /srv/compiled
WORKDIR /app
# the service user "credit" created above (numeric so that Kubernetes runAsNonRoot can verify it)
USER 10001:10001
# 8000: HTTP API (OpenAPI at /schema); 8080: dashboard
EXPOSE 8000 8080
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "/app/docker/healthcheck.py"]
STOPSIGNAL SIGTERM
ENTRYPOINT ["/app/docker/entrypoint.sh"]
