#!/bin/sh
# The container's command: Baton over HTTP on every interface of the container, which Baton allows
# only with the Host names clients will use (DNS-rebinding protection): BATON_ALLOWED_HOSTS, comma-
# separated, e.g. "baton.example.com" behind a proxy, or "localhost" for `docker run -p 8765:8765`.
# Unset, Baton refuses to start and says why. Extra arguments go to `baton serve` (e.g. --workers 2).
set -eu
set -- --transport http --host 0.0.0.0 --port 8765 "$@"
for name in $(printf '%s' "${BATON_ALLOWED_HOSTS:-}" | tr ',' ' '); do
  set -- "$@" --allowed-host "$name"
done
for origin in $(printf '%s' "${BATON_ALLOWED_ORIGINS:-}" | tr ',' ' '); do
  set -- "$@" --allowed-origin "$origin"
done
exec baton serve "$@"
