# restate-server (Python): one process, embedded RocksDB.
#   docker build -t restate-py-server .
#   docker run --rm -p 8080:8080 -p 9070:9070 -p 5122:5122 -v restate-data:/restate-data restate-py-server
# tests/e2e/test_docker_recipe.py performs this file's steps outside a container; keep
# each RUN a plain shell line (see the README's Docker section for what it covers).
FROM python:3.11-slim

ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    RESTATE_BASE_DIR=/restate-data

WORKDIR /app
COPY pyproject.toml README.md ./
COPY restate_server ./restate_server
COPY restate_sdk ./restate_sdk
COPY cli ./cli
# No extras: the server's runtime dependencies only. Bytecode is compiled here, once:
# the server runs as a user that cannot write site-packages.
RUN pip install . && python -m compileall -q "$(python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
RUN useradd --system --uid 10001 --no-create-home --shell /usr/sbin/nologin restate && mkdir -p /restate-data && chown restate:restate /restate-data

USER restate
VOLUME ["/restate-data"]
# ingress, admin, node (GET /metrics)
EXPOSE 8080 9070 5122
HEALTHCHECK --interval=5s --timeout=5s --start-period=10s --retries=5 \
    CMD ["python", "-m", "restate_server.healthcheck"]
# Exec form: restate-server is PID 1 and gets SIGTERM itself (graceful shutdown, up to
# shutdown-timeout; give `docker stop` a longer --time than that).
ENTRYPOINT ["restate-server"]
