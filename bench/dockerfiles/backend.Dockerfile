# The backend, the Dockerfile way: a hand-written multi-stage build in today's
# optimized style, for the side-by-side benchmark (bench/compare.py).
#
#   builder: compilers + a venv; torch first (its own layer, from a local CPU
#            wheel bound from the context, torch's own dependencies from
#            PyPI), then the lockfile, then the model
#            baked by the app's own command; pip's cache on a cache mount.
#   runtime: the slim base, a non-root user, the venv and the model copied
#            over, the app code, a HEALTHCHECK.
#
# Build context: services/backend, with the torch wheel in wheels/ (the bench
# hard-links it there). The host's CA bundle comes in as the secret "ca", for
# pip behind an intercepting TLS proxy; it never reaches a layer.
ARG BUILDER_IMAGE
ARG RUNTIME_IMAGE

FROM ${BUILDER_IMAGE} AS builder
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_ROOT_USER_ACTION=ignore PATH=/opt/venv/bin:$PATH
WORKDIR /src
RUN python3 -m venv /opt/venv
COPY requirements/torch.txt requirements/torch.txt
RUN --mount=type=cache,target=/root/.cache/pip \
    --mount=type=bind,source=wheels,target=/wheels \
    --mount=type=secret,id=ca \
    PIP_CERT=/run/secrets/ca pip install --no-deps --find-links /wheels -r requirements/torch.txt
COPY requirements/app.lock requirements/app.lock
RUN --mount=type=cache,target=/root/.cache/pip \
    --mount=type=secret,id=ca \
    PIP_CERT=/run/secrets/ca pip install --no-deps -r requirements/app.lock
COPY app app
COPY migrations migrations
RUN python -m app.train --out /opt/model/model.pt

FROM ${RUNTIME_IMAGE}
RUN useradd --system --uid 10001 --user-group --no-create-home --home-dir /app \
        --shell /usr/sbin/nologin app
COPY --from=builder /opt/venv /opt/venv
COPY --from=builder /opt/model /opt/model
WORKDIR /app
COPY app app
COPY migrations migrations
ENV PATH=/opt/venv/bin:$PATH PYTHONUNBUFFERED=1 MODEL_PATH=/opt/model/model.pt
USER 10001:10001
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/health', timeout=4)"]
CMD ["uvicorn", "app.main:app", "--host", "0.0.0.0", "--port", "8000"]
