# hudong: one node on the embedded default (the durable store in /data), or one of N
# nodes on Redis (deploy/compose.yaml, deploy/k8s/; docs/operations.md).
#   docker build -t hudong . && docker run -p 8000:8000 -v hudong-data:/data \
#       -e HUDONG_ADMIN_TOKEN=change-me-to-a-long-secret hudong
# Configured by environment (README, "Configuration"): HUDONG_PUBLIC_URL says where phones
# reach it (links and the wall's QR code), HUDONG_REDIS_URL puts it on Redis. The embedded
# store (rooms, votes, draws) and the kept secret live in /data: mount a volume there.
# tests/test_deploy.py builds the wheel from exactly the files copied below.

# --- build: a wheel of hudong and its dependencies, in a virtual environment ---
FROM python:3.11.7-slim-bookworm AS build
ENV PYTHONDONTWRITEBYTECODE=1 PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
COPY pyproject.toml README.md ./
COPY protocol ./protocol
COPY server ./server
COPY loadtest ./loadtest
# pyproject maps clients/ (the pages and the JS client) to server.clients and config/
# (the default blocklist) to server.defaults: both must be here for `pip install .`
COPY clients ./clients
COPY config ./config
RUN python -m venv /opt/hudong && /opt/hudong/bin/pip install .

# --- run: the slim base, the virtual environment, no build tools, not root ---
FROM python:3.11.7-slim-bookworm
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PATH=/opt/hudong/bin:$PATH \
    HUDONG_HOST=0.0.0.0 HUDONG_PORT=8000 HUDONG_DATA_DIR=/data
RUN useradd --system --uid 10001 --no-create-home --shell /usr/sbin/nologin hudong \
    && mkdir /data && chown hudong /data && chmod 700 /data
COPY --from=build /opt/hudong /opt/hudong
VOLUME /data
USER 10001
WORKDIR /data
EXPOSE 8000
# Ready, not just alive: /readyz answers 503 while the store is unreachable, at degrade
# level 3 and while the node drains, so an orchestrator stops sending viewers there.
HEALTHCHECK --interval=10s --timeout=3s --start-period=10s --retries=3 \
    CMD ["python", "-c", "import os,sys,urllib.request; sys.exit(urllib.request.urlopen('http://127.0.0.1:%s/readyz' % os.environ.get('HUDONG_PORT', '8000'), timeout=2).status != 200)"]
# SIGTERM drains: /readyz turns 503, viewers are closed with 1012 (reconnect elsewhere),
# and the node exits 0 within hub.shutdown_grace_s (5 s by default).
STOPSIGNAL SIGTERM
ENTRYPOINT ["hudong", "serve"]
