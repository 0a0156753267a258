# hudong: one node on the embedded default (the durable store in /data).
#   docker build -t hudong . && docker run -p 8000:8000 -e HUDONG_ADMIN_TOKEN=change-me-to-a-long-secret hudong
# Links and the wall's QR code name the container's address unless HUDONG_PUBLIC_URL
# says where phones reach it (-e HUDONG_PUBLIC_URL=http://192.168.1.20:8000). The store
# (rooms, votes, draws) and the kept secret live in /data: mount a volume there
# (-v hudong-data:/data) to keep results and links across containers.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
WORKDIR /app
COPY pyproject.toml README.md ./
COPY protocol ./protocol
COPY server ./server
COPY loadtest ./loadtest
COPY config ./config
RUN pip install --no-cache-dir . && useradd --system --uid 10001 hudong \
    && mkdir /data && chown hudong /data && chmod 700 /data
ENV HUDONG_DATA_DIR=/data
VOLUME /data
USER hudong
EXPOSE 8000
HEALTHCHECK --interval=10s --timeout=3s CMD python -c "import urllib.request,sys; sys.exit(urllib.request.urlopen('http://127.0.0.1:8000/healthz').status != 200)"
# SIGTERM drains and closes viewers with 1012 (reconnect) before exiting.
STOPSIGNAL SIGTERM
CMD ["hudong", "serve", "--host", "0.0.0.0", "--port", "8000"]
