# Baton over streamable HTTP in a container (docs/http.md, "Running as a service").
#
#   docker build -t baton .
#   docker run -d --name baton -p 127.0.0.1:8765:8765 -v baton-data:/data \
#       -e BATON_ALLOWED_HOSTS=localhost,baton.example.com baton
#   docker exec baton baton keys create --agent-id alice      # prints the key once
#
# Inside the container Baton binds 0.0.0.0 (the port mapping needs it), which it allows only with
# the Host names clients use: BATON_ALLOWED_HOSTS (comma-separated). Put a TLS proxy in front
# (deploy/Caddyfile, deploy/nginx.conf) for anything beyond this machine.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /src
COPY pyproject.toml README.md LICENSE ./
COPY src ./src
RUN pip install . && rm -rf /src

COPY deploy/docker-entrypoint.sh /usr/local/bin/baton-entrypoint
RUN useradd --system --uid 10001 --user-group --home-dir /data --shell /usr/sbin/nologin baton \
    && mkdir -p /data && chown baton:baton /data && chmod 0700 /data

USER 10001:10001
WORKDIR /data
# The database, its -wal and backups: keep /data on a volume.
ENV BATON_DB=/data/baton.db
VOLUME ["/data"]
EXPOSE 8765

# SIGTERM: Baton finishes the calls in flight (up to 30 s); give `docker stop -t 40` or more.
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s \
    CMD ["python", "-c", "import sys, urllib.request; sys.exit(urllib.request.urlopen('http://127.0.0.1:8765/healthz', timeout=4).status != 200)"]
ENTRYPOINT ["baton-entrypoint"]
