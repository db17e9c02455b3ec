# One image for both Crane processes: `crane operator` and `crane serve` (entrypoint `crane`).
#   docker build -t crane:0.1.0 .
#   docker run --rm crane:0.1.0 --version
# The build stage turns the project and every dependency into wheels; the final stage installs
# only those wheels (no index, no compiler, no build tools) and runs as an unprivileged user.

ARG PYTHON_IMAGE=python:3.12.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PYTHONDONTWRITEBYTECODE=1
WORKDIR /src
COPY pyproject.toml README.md ./
COPY crane ./crane
# The project wheel and its dependencies at versions that satisfy pyproject.toml's lower
# bounds (the `postgres` extra lets the API use a PostgreSQL URL), then the exact set resolved
# here written down as name==version, so the final stage installs precisely these wheels.
RUN python -m pip wheel --wheel-dir /wheels ".[postgres]" \
    && python -c "import pathlib; print(*sorted('=='.join(w.name.split('-')[:2]) for w in pathlib.Path('/wheels').glob('*.whl')), sep='\n')" > /wheels/requirements.txt \
    && cat /wheels/requirements.txt

FROM ${PYTHON_IMAGE}
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    HOME=/tmp
RUN groupadd --system --gid 10001 crane \
    && useradd --system --uid 10001 --gid crane --no-create-home --home-dir /nonexistent \
       --shell /usr/sbin/nologin crane \
    && install -d -o 10001 -g 10001 -m 0750 /var/lib/crane
RUN --mount=type=bind,from=build,source=/wheels,target=/wheels \
    python -m pip install --no-index --no-deps --find-links /wheels --requirement /wheels/requirements.txt \
    && python -m pip check \
    && crane --version
USER 10001:10001
WORKDIR /var/lib/crane
# 8000: the API (crane serve); 8080: the operator's /healthz; 9090: the operator's /metrics.
EXPOSE 8000 8080 9090
ENTRYPOINT ["crane"]
CMD ["--help"]
