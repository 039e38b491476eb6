# restate-server (Python): one process, embedded RocksDB.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    RESTATE_BASE_DIR=/restate-data

WORKDIR /app
COPY pyproject.toml README.md ./
COPY restate_server ./restate_server
COPY restate_sdk ./restate_sdk
RUN pip install --no-cache-dir .

VOLUME ["/restate-data"]
# ingress, admin
EXPOSE 8080 9070
ENTRYPOINT ["restate-server"]
