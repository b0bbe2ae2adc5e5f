# syntax=docker/dockerfile:1
# One image, two processes: `omni serve` (the Slack-facing bot, default) and `omni worker`.

ARG PYTHON_IMAGE=python:3.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1
WORKDIR /src
RUN python -m venv /opt/omni
# Dependencies in their own layer: it is rebuilt only when pyproject.toml changes.
COPY pyproject.toml README.md ./
RUN mkdir -p bot workers commands \
    && touch bot/__init__.py workers/__init__.py commands/__init__.py \
    && /opt/omni/bin/pip install . \
    && /opt/omni/bin/pip uninstall --yes omni
COPY bot ./bot
COPY workers ./workers
COPY commands ./commands
RUN /opt/omni/bin/pip install --no-deps . && rm -rf /src

FROM ${PYTHON_IMAGE}
LABEL org.opencontainers.image.title="omni" \
      org.opencontainers.image.description="Omni: the troubleshooting guide as Slack runbooks"
RUN groupadd --system --gid 10001 omni \
    && useradd --system --uid 10001 --gid omni --no-create-home --shell /usr/sbin/nologin omni
COPY --from=build /opt/omni /opt/omni
ENV PATH=/opt/omni/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PORT=3000 \
    OMNI_HEALTH_PORT=9000
USER 10001:10001
EXPOSE 3000 9000
# Works for both processes: `omni healthcheck` asks the bot's /healthz or the worker's.
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 CMD ["omni", "healthcheck"]
ENTRYPOINT ["omni"]
CMD ["serve"]
