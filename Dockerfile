# The webinar server as a container image (docs/deployment.md, "Container image").
#
#   docker build -t webinar-server .
#   docker run -d --name webinar -p 8080:8080 -p 40000-40099:40000-40099/udp \
#     -e WEBINAR_ICE_UDP_PORT_MIN=40000 -e WEBINAR_ICE_UDP_PORT_MAX=40099 \
#     -e WEBINAR_ICE_ANNOUNCED_IP=<the host's public IP> -v webinar-data:/var/lib/webinar \
#     webinar-server
#
# Two stages: the first builds the project's wheel (compiling the translation catalogs) and
# the wheels of every dependency; the second installs them into a slim Python image without
# build tools, and runs `webinar serve` as an unprivileged user.

ARG PYTHON_VERSION=3.11

# ---------------------------------------------------------------------------------- build
FROM python:${PYTHON_VERSION}-slim-bookworm AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
WORKDIR /src
COPY pyproject.toml hatch_build.py README.md LICENSE NOTICE ./
COPY src ./src
COPY web ./web
# A C compiler for the SFU's native fan-out (src/webinar/sfu/_fanout.c: the project's wheel
# carries it, compiled here; the image's Python has its headers). One wheel for the project,
# one for each dependency (all of them ship manylinux wheels: nothing else is compiled).
RUN apt-get update \
    && apt-get install -y --no-install-recommends gcc libc6-dev \
    && rm -rf /var/lib/apt/lists/*
RUN pip wheel --wheel-dir /wheels .

# ---------------------------------------------------------------------------------- runtime
FROM python:${PYTHON_VERSION}-slim-bookworm
LABEL org.opencontainers.image.title="webinar-server" \
      org.opencontainers.image.description="A self-hosted webinar server with its own WebRTC SFU" \
      org.opencontainers.image.licenses="Apache-2.0"
# redis-server: `--workers N` (or WEBINAR_SERVER_WORKERS) without cluster.redis_url starts a
# private one; fonts-liberation: the letters (Cyrillic, Czech) of names, whiteboard text and
# cards in the composed picture (recordings, live stream, HLS). Nothing else is added.
RUN apt-get update \
    && apt-get install -y --no-install-recommends redis-server fonts-liberation \
    && rm -rf /var/lib/apt/lists/*
RUN --mount=type=bind,from=build,source=/wheels,target=/wheels \
    python -m venv /opt/webinar \
    && /opt/webinar/bin/pip install --no-cache-dir --disable-pip-version-check \
       --no-index --find-links /wheels webinar-server \
    && /opt/webinar/bin/webinar --version
# A fixed UID/GID, so that a bind-mounted data folder can be given to it (chown 10001:10001).
RUN groupadd --system --gid 10001 webinar \
    && useradd --system --uid 10001 --gid webinar --home-dir /var/lib/webinar \
       --shell /usr/sbin/nologin webinar \
    && install -d -m 0700 -o webinar -g webinar /var/lib/webinar
ENV PATH=/opt/webinar/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    WEBINAR_DATA_DIR=/var/lib/webinar \
    WEBINAR_HTTP_HOST=0.0.0.0 \
    WEBINAR_HTTP_PORT=8080 \
    WEBINAR_ICE_UDP_PORT_MIN=40000 \
    WEBINAR_ICE_UDP_PORT_MAX=40099 \
    WEBINAR_LOG_FORMAT=json
# Everything the server keeps: the database (SQLite), secrets.key, recordings, poll images.
VOLUME ["/var/lib/webinar"]
WORKDIR /var/lib/webinar
USER webinar:webinar
# HTTP (pages, API, the signalling WebSocket): put a TLS reverse proxy in front, or set
# WEBINAR_TLS_CERT_FILE/KEY_FILE. Media: UDP, the range of WEBINAR_ICE_UDP_PORT_MIN..MAX,
# published 1:1 (`-p 40000-40099:40000-40099/udp`) with WEBINAR_ICE_ANNOUNCED_IP set to the
# host's address; a wider range needs both the variables and the published range changed.
EXPOSE 8080/tcp 40000-40099/udp
HEALTHCHECK --interval=30s --timeout=10s --start-period=30s --retries=3 \
    CMD ["webinar", "healthcheck", "--quiet"]
# SIGTERM drains the live rooms (lifecycle.drain_seconds, 60 s): stop with a longer timeout,
# `docker stop -t 90`, or `stop_grace_period: 90s` in compose.
STOPSIGNAL SIGTERM
ENTRYPOINT ["webinar"]
CMD ["serve"]
