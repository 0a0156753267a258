# hudong: one node on the embedded default (memory backend).
#   docker build -t hudong . && docker run -p 8000:8000 -e HUDONG_ADMIN_TOKEN=change-me hudong
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
WORKDIR /app
COPY pyproject.toml README.md ./
COPY protocol ./protocol
COPY server ./server
COPY loadtest ./loadtest
COPY config ./config
RUN pip install --no-cache-dir . && useradd --system --uid 10001 hudong
USER hudong
EXPOSE 8000
HEALTHCHECK --interval=10s --timeout=3s CMD python -c "import urllib.request,sys; sys.exit(urllib.request.urlopen('http://127.0.0.1:8000/healthz').status != 200)"
# SIGTERM drains and closes viewers with 1012 (reconnect) before exiting.
STOPSIGNAL SIGTERM
CMD ["hudong", "serve", "--host", "0.0.0.0", "--port", "8000"]
