# The CODITECT Cloud API server. Two stages: the wheel (and the wheels it depends on) built
# in `build`, installed in a runtime stage that has neither the sources nor the build tools.
#
#   docker build -t coditect-cloud .
#   docker run -e DATABASE_URL=... -e JWT_PRIVATE_KEY_FILE=/keys/jwt.pem ... coditect-cloud
#   docker run ... coditect-cloud migrate        # the one-off migration job
#
# No key, password or URL is baked in: everything comes from the environment and mounted
# files at run time (README: Configuration; deploy/ has Cloud Run and Kubernetes recipes).

# Any image with Python 3.11+ and its venv module at /usr/bin or /usr/local/bin.
ARG BASE_IMAGE=python:3.11-slim

FROM ${BASE_IMAGE} AS build
WORKDIR /src
COPY pyproject.toml README.md openapi.yaml ./
COPY app ./app
COPY db ./db
COPY handlers ./handlers
COPY sql ./sql
# For builds behind a package mirror or a TLS-inspecting proxy (--build-arg, and the CA
# bundle mounted for the build); this stage is not part of the image, nor are its arguments.
ARG PIP_INDEX_URL
ARG PIP_CERT
# pip builds our wheel with hatchling (in an isolated build environment) and fetches the
# wheels of every dependency next to it.
RUN python -m venv /opt/pip \
    && /opt/pip/bin/pip wheel --no-cache-dir --disable-pip-version-check --wheel-dir /wheels .

FROM ${BASE_IMAGE} AS runtime
# A fixed numeric uid, so that Kubernetes' runAsNonRoot can check it without a name lookup.
ARG UID=10001
RUN useradd --system --uid "${UID}" --user-group --no-log-init \
        --home-dir /var/lib/coditect --create-home --shell /usr/sbin/nologin coditect
# Installed from the build stage's wheels only: nothing is fetched at this stage, and the
# wheels are mounted, not copied, so they take no layer.
RUN --mount=type=bind,from=build,source=/wheels,target=/wheels \
    python -m venv /opt/coditect \
    && /opt/coditect/bin/pip install --no-cache-dir --disable-pip-version-check \
        --no-index --find-links /wheels coditect-cloud \
    && /opt/coditect/bin/python -m compileall -q /opt/coditect/lib
ENV PATH=/opt/coditect/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    HOST=0.0.0.0 \
    PORT=8080 \
    CODITECT_DATA_DIR=/var/lib/coditect
USER ${UID}:${UID}
WORKDIR /var/lib/coditect
EXPOSE 8080
# /healthz checks no dependency: the process answers. Readiness (/readyz) is for the
# orchestrator's probes, not for restarting the container.
HEALTHCHECK --interval=30s --timeout=3s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:' + os.environ.get('PORT', '8080') + '/healthz', timeout=2)"]
ENTRYPOINT ["coditect-cloud"]
CMD ["serve"]
