#!/usr/bin/env bash
# Start the real Redis and PostgreSQL the tests use, when they are not already running.
# Safe to run repeatedly. On a laptop without them, it says what to install.
set -u

redis_up() { redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1 || python3 - <<'PY' 2>/dev/null
import socket, sys
s = socket.create_connection(("127.0.0.1", 6379), timeout=1); s.sendall(b"PING\r\n")
sys.exit(0 if s.recv(16).startswith(b"+PONG") else 1)
PY
}
pg_up() { pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; }

if ! redis_up; then
  if command -v redis-server >/dev/null; then
    echo "starting redis-server on 127.0.0.1:6379"
    mkdir -p /var/lib/redis /var/log/redis 2>/dev/null || true
    redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no \
      --dir /var/lib/redis --logfile /var/log/redis/ci.log \
      || redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no
  else
    echo "redis-server is not installed (Debian: apt-get install redis-server)" >&2
  fi
fi
if ! pg_up; then
  if command -v pg_ctlcluster >/dev/null && [ -d /etc/postgresql ]; then
    echo "starting PostgreSQL"
    pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n1)" main start || true
  else
    echo "PostgreSQL is not installed (Debian: apt-get install postgresql)" >&2
  fi
fi
for _ in $(seq 1 60); do
  redis_up && pg_up && exit 0
  sleep 0.5
done
redis_up || echo "Redis is not reachable on 127.0.0.1:6379" >&2
pg_up || echo "PostgreSQL is not reachable on 127.0.0.1:5432" >&2
exit 1
