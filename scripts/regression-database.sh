#!/usr/bin/env bash
# Builds PostgreSQL 15's own regression database (the "regression" database that pg_upgrade's
# test dumps and compares) and saves it as a plain-SQL dump that a test can load into any fresh
# PostgreSQL 15 cluster. Idempotent: a second run only re-checks what the dump needs, unless
# --force is given.
#
#   bash scripts/regression-database.sh [--force] [--no-verify] [--keep-running]
#
# What it does (everything lands in .tools/regression/ of this checkout):
#   1. postgresql-server-dev-15 (headers and pgxs) at the installed server's Debian version,
#      through apt-get, like scripts/install-postgres.sh (needs root or sudo when it is missing).
#   2. PostgreSQL 15's regression suite (src/test/regress of the upstream tarball) from
#      Debian's source package of the installed server version (`apt-get source
#      --download-only`, using a private apt state that turns the system's own `deb` entries
#      into `deb-src`: the system's apt configuration is not touched). Only src/test/regress is
#      kept, in .tools/regression/src/.
#   3. regress.so (src/test/regress/regress.c, built with pgxs) installed into PostgreSQL 15's
#      $libdir ($(pg_config --pkglibdir), /usr/lib/postgresql/15/lib). The tests' C functions
#      point at /usr/lib/postgresql/15/lib/{regress,autoinc,refint}.so by absolute path
#      (pg_regress --dlpath), so the same path works in every cluster of this machine's
#      PostgreSQL 15; autoinc.so and refint.so come with Debian's postgresql-15 (contrib spi).
#   4. A throw-away cluster (initdb --encoding=UTF8 --locale=C.UTF-8, like the Rust testkit; unix
#      socket only, in a temporary directory under /tmp/regressdb.*), run as the `postgres` OS
#      user when this script runs as root, on which pg_regress runs the whole parallel_schedule
#      in installcheck mode, like `make installcheck` (no --use-existing: pg_regress then drops
#      and creates the "regression" database itself, with its usual database settings). Tests
#      may fail against an installed server (locale, settings) without harm: only the database
#      they leave behind matters. The count is in summary.txt, the diffs in pg_regress/.
#   5. Dumps, made with PostgreSQL 18's client tools (.tools/pg18-client):
#        regression.sql        pg_dump of "regression": a full plain-SQL dump (schema, data,
#                              owners, privileges), without CREATE DATABASE
#        regression-roles.sql  pg_dumpall --roles-only, less the bootstrap superuser
#      Both are made with a fixed --restrict-key, so they start with `\restrict` and need
#      psql 18 (or 17.6+/16.10+/15.14+) to load; the PostgreSQL 15.18 psql here knows `\restrict`
#      too (it was back-patched).
#   6. Unless --no-verify: loads both dumps into a second fresh PostgreSQL 15 cluster with
#      `psql -v ON_ERROR_STOP=0`, counts the errors (restore.log), dumps the restored database
#      again and diffs it against regression.sql (restore.diff).
#   7. Stops the clusters it started and removes their directories, unless --keep-running
#      (then the source cluster stays up and its connection is printed and kept in
#      summary.txt; stop it with the printed pg_ctl command).
#
# To restore the dump in a test (a fresh PostgreSQL 15 cluster, superuser postgres):
#   psql -X -d postgres -f .tools/regression/regression-roles.sql
#   psql -X -d postgres -c 'CREATE DATABASE regression TEMPLATE template0'
#   psql -X -d regression -v ON_ERROR_STOP=0 -f .tools/regression/regression.sql
# The restore needs, in the server's file system:
#   /usr/lib/postgresql/15/lib/regress.so   (installed by this script, also kept in
#                                            .tools/regression/regress.so)
#   /usr/lib/postgresql/15/lib/autoinc.so, refint.so   (Debian's postgresql-15)
# A PostgreSQL 18 server cannot load those PostgreSQL 15 libraries ("incompatible library"):
# C functions, and the types and tables that depend on them, need a regress.so built for 18.
#
# Measured here (Debian 15.18, 2 cores): all 217 tests of parallel_schedule pass; the whole
# script takes about 1 minute (source 10 s, pg_regress 45 s, dumps 1 s, restore check 5 s);
# regression.sql is 13 MB. The restore into a fresh 15 cluster has 1 error, harmless:
# `SET transaction_timeout = 0` (pg_dump 18 writes it; 15 does not know it). Its re-dump differs
# only where a plain dump cannot keep things: the column order of inheritance children
# (CREATE TABLE and COPY column lists of 13 tables) and the row order of a few tables. Two runs
# also differ in the row order of a few tables (concurrent tests).
set -euo pipefail

SCRIPT_FORMAT=1   # bump when the outputs change, so that old outputs are rebuilt
root_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
tools="$root_dir/.tools"
out="$tools/regression"
pg15_bin="${MIGRATOR_PG15_BIN:-/usr/lib/postgresql/15/bin}"
client="$tools/pg18-client"
restrict_key="regressiondump"

force=0 verify=1 keep_running=0
for arg in "$@"; do
  case "$arg" in
    --force) force=1 ;;
    --no-verify) verify=0 ;;
    --keep-running) keep_running=1 ;;
    -h|--help) sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "regression-database: unknown argument $arg" >&2; exit 2 ;;
  esac
done

say() { printf 'regression-database: %s\n' "$*"; }
die() { say "ERROR: $*"; exit 1; }
as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"
  elif command -v sudo >/dev/null 2>&1; then sudo "$@"
  else say "need root for: $*"; return 1
  fi
}
# PostgreSQL refuses to run as root: servers (and pg_regress, whose tests make the server read
# and write files in its input and output directories) run as the `postgres` OS user then.
if [ "$(id -u)" -eq 0 ]; then
  id postgres >/dev/null 2>&1 || useradd --system --user-group --no-create-home --shell /usr/sbin/nologin postgres
  as_pg() { runuser -u postgres -- "$@"; }
  run_user=postgres
else
  as_pg() { "$@"; }
  run_user="$(id -un)"
fi
pg18() { LD_LIBRARY_PATH="$client/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" "$client/bin/$1" "${@:2}"; }
elapsed() { local s=$(( SECONDS - $1 )); printf '%dm%02ds' $((s / 60)) $((s % 60)); }

[ -x "$pg15_bin/postgres" ] && [ -x "$pg15_bin/initdb" ] \
  || die "no PostgreSQL 15 in $pg15_bin: run scripts/install-postgres.sh first"
[ -x "$client/bin/pg_dump" ] || die "no PostgreSQL 18 client tools in $client: run scripts/install-postgres.sh first"
server_version="$("$pg15_bin/postgres" --version)"            # postgres (PostgreSQL) 15.18 (Debian ...)
deb_version="$(dpkg-query -W -f='${Version}' postgresql-15 2>/dev/null || true)"   # 15.18-0+deb12u1
stamp="format=$SCRIPT_FORMAT server=$server_version"
t_all=$SECONDS
mkdir -p "$out"

# --- 1. postgresql-server-dev-15 --------------------------------------------------------------
t=$SECONDS
if [ -f /usr/include/postgresql/15/server/postgres.h ] && [ -x "$pg15_bin/pg_config" ] \
   && [ -f "$("$pg15_bin/pg_config" --pgxs)" ]; then
  say "postgresql-server-dev-15 present"
else
  say "installing postgresql-server-dev-15${deb_version:+ $deb_version}"
  as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
      "postgresql-server-dev-15${deb_version:+=$deb_version}" >/dev/null \
    || as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
      postgresql-server-dev-15 >/dev/null
  say "installed postgresql-server-dev-15 ($(elapsed "$t"))"
fi
pg_config="$pg15_bin/pg_config"
pkglibdir="$("$pg_config" --pkglibdir)"
pg_regress="$(dirname "$("$pg_config" --pgxs)")/../test/regress/pg_regress"
[ -x "$pg_regress" ] || die "no pg_regress at $pg_regress (it comes with postgresql-client-15)"
command -v make >/dev/null 2>&1 && command -v gcc >/dev/null 2>&1 \
  || as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends make gcc libc6-dev >/dev/null

# --- 2. The regression suite's source ---------------------------------------------------------
t=$SECONDS
src="$out/src/regress"
if [ -f "$src/parallel_schedule" ] && [ -f "$src/regress.c" ] && [ -f "$out/src/VERSION" ]; then
  say "regression suite present: $(cat "$out/src/VERSION")"
else
  say "fetching the source package of postgresql-15${deb_version:+ $deb_version}"
  work="$(mktemp -d /tmp/regressdb-src.XXXXXX)"
  mkdir -p "$work/parts" "$work/lists/partial" "$work/dl"
  # deb-src twins of the system's own `deb` entries (deb822 .sources files and one-line lists).
  for f in /etc/apt/sources.list.d/*.sources; do
    [ -f "$f" ] && sed -E 's/^Types:.*\bdeb\b.*$/Types: deb-src/' "$f" >"$work/parts/$(basename "$f")"
  done
  for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
    [ -f "$f" ] && sed -nE 's/^deb[[:space:]]+/deb-src /p' "$f" >>"$work/parts/from-lists.list"
  done
  aptopts=(-o "Dir::Etc::SourceList=/dev/null" -o "Dir::Etc::SourceParts=$work/parts"
           -o "Dir::State::Lists=$work/lists" -o "Dir::Cache::pkgcache=" -o "Dir::Cache::srcpkgcache="
           -o "APT::Sandbox::User=root")
  apt-get "${aptopts[@]}" update -qq >"$work/apt.log" 2>&1 || { cat "$work/apt.log"; die "apt-get update (deb-src) failed"; }
  (cd "$work/dl" && { apt-get "${aptopts[@]}" source --download-only "postgresql-15${deb_version:+=$deb_version}" \
                      || apt-get "${aptopts[@]}" source --download-only postgresql-15; } >>"$work/apt.log" 2>&1) \
    || { cat "$work/apt.log"; die "apt-get source postgresql-15 failed"; }
  orig="$(ls "$work"/dl/postgresql-15_*.orig.tar.* | head -n1)"
  tar -xf "$orig" -C "$work" --wildcards '*/src/test/regress/*'
  rm -rf "$out/src" && mkdir -p "$out/src"
  mv "$work"/postgresql-15*/src/test/regress "$src"
  basename "$orig" | sed -E 's/^postgresql-15_(.*)\.orig\.tar\..*/\1/' >"$out/src/VERSION"
  rm -rf "$work"
  say "regression suite of PostgreSQL $(cat "$out/src/VERSION") in $src ($(elapsed "$t"))"
fi

# --- 3. regress.so ----------------------------------------------------------------------------
t=$SECONDS
if [ ! -f "$out/regress.so" ] || [ "$src/regress.c" -nt "$out/regress.so" ]; then
  say "building regress.so with pgxs"
  rm -rf "$out/build" && mkdir -p "$out/build"
  cp "$src/regress.c" "$out/build/"
  printf 'MODULES = regress\nPG_CONFIG = %s\nPGXS := $(shell $(PG_CONFIG) --pgxs)\ninclude $(PGXS)\n' \
    "$pg_config" >"$out/build/Makefile"
  # with_llvm=no: no bitcode for the JIT, which would need clang at run time for nothing.
  make -s -C "$out/build" with_llvm=no >"$out/build/make.log" 2>&1 || { cat "$out/build/make.log"; die "building regress.so failed"; }
  cp "$out/build/regress.so" "$out/regress.so"
fi
if ! cmp -s "$out/regress.so" "$pkglibdir/regress.so"; then
  say "installing regress.so into $pkglibdir"
  as_root install -m 0755 "$out/regress.so" "$pkglibdir/regress.so"
fi
for lib in autoinc refint; do
  [ -f "$pkglibdir/$lib.so" ] || die "$pkglibdir/$lib.so is missing (it comes with Debian's postgresql-15)"
done
say "regress.so ready: $pkglibdir/regress.so ($(elapsed "$t"))"

if [ "$force" -eq 0 ] && [ "$keep_running" -eq 0 ] && [ -s "$out/regression.sql" ] \
   && [ "$(cat "$out/stamp" 2>/dev/null)" = "$stamp" ]; then
  say "dump present: $out/regression.sql ($(du -h "$out/regression.sql" | cut -f1)); --force rebuilds it"
  exit 0
fi

# --- clusters ---------------------------------------------------------------------------------
clusters=()
cleanup() {
  local dir
  for dir in "${clusters[@]}"; do
    if [ "$keep_running" -eq 1 ] && [ "$dir" = "${keep_dir:-}" ]; then continue; fi
    as_pg "$pg15_bin/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null 2>&1 || true
    rm -rf "$dir"
  done
}
trap cleanup EXIT

# start_cluster VAR: a fresh PostgreSQL 15 cluster in /tmp/regressdb.*; sets VAR to its
# directory (socket in it, port in $dir/port).
start_cluster() {
  local dir port
  dir="$(mktemp -d /tmp/regressdb.XXXXXX)"
  clusters+=("$dir")
  chown "$run_user" "$dir" 2>/dev/null || true
  chmod 0755 "$dir"
  port=$(( 20000 + RANDOM % 20000 ))   # only a unix socket in $dir: the port cannot collide
  echo "$port" >"$dir/port"
  as_pg "$pg15_bin/initdb" -D "$dir/data" -U postgres --auth=trust --encoding=UTF8 \
    --locale=C.UTF-8 --no-sync >"$dir/initdb.log" 2>&1 || { cat "$dir/initdb.log"; die "initdb failed"; }
  cat >>"$dir/data/postgresql.conf" <<EOF

# scripts/regression-database.sh
listen_addresses = ''
unix_socket_directories = '$dir'
port = $port
fsync = off
synchronous_commit = off
full_page_writes = off
max_prepared_transactions = 10
max_connections = 100
EOF
  as_pg "$pg15_bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 120 start >/dev/null \
    || { cat "$dir/server.log"; die "cannot start PostgreSQL 15 in $dir"; }
  printf -v "$1" '%s' "$dir"
}

# --- 4. pg_regress ----------------------------------------------------------------------------
t=$SECONDS
start_cluster srcdir
srcport="$(cat "$srcdir/port")"
say "source cluster: $srcdir (port $srcport), running pg_regress parallel_schedule"
regress_out="$srcdir/regress-out"
mkdir -p "$regress_out" && chown "$run_user" "$regress_out" 2>/dev/null || true
set +e
(cd "$regress_out" && as_pg "$pg_regress" \
  --inputdir="$src" --outputdir="$regress_out" --bindir="$pg15_bin" --dlpath="$pkglibdir" \
  --schedule="$src/parallel_schedule" --max-concurrent-tests=20 \
  --host="$srcdir" --port="$srcport" --user=postgres --dbname=regression) >"$regress_out/pg_regress.log" 2>&1
regress_rc=$?
set -e
rm -rf "$out/pg_regress" && mkdir -p "$out/pg_regress"
cp "$regress_out/pg_regress.log" "$out/pg_regress/"
[ -f "$regress_out/regression.diffs" ] && cp "$regress_out/regression.diffs" "$out/pg_regress/"
ok_tests=$(grep -cE '\.\.\. ok' "$regress_out/pg_regress.log" || true)
failed_tests=$(grep -cE '\.\.\. FAILED' "$regress_out/pg_regress.log" || true)
failed_names=$({ grep -E '\.\.\. FAILED' "$regress_out/pg_regress.log" || true; } | awk '{ print ($1 == "test" ? $2 : $1) }' | tr '\n' ' ')
regress_line=$({ grep -E 'tests (passed|failed)|tests? .*failed' "$regress_out/pg_regress.log" || true; } | head -n1 | sed -E 's/^[ =#]*//; s/[ =]*$//')
say "pg_regress exit $regress_rc: $regress_line ($ok_tests ok, $failed_tests failed) ($(elapsed "$t"))"
[ "$failed_tests" -gt 0 ] && say "failed tests: $failed_names"
as_pg "$pg15_bin/psql" -X -h "$srcdir" -p "$srcport" -U postgres -d regression -Atqc 'SELECT 1' >/dev/null \
  || die "no regression database after pg_regress (see $out/pg_regress/pg_regress.log)"
t_regress=$(elapsed "$t")

# --- 5. dumps ---------------------------------------------------------------------------------
t=$SECONDS
other_dbs=$(pg18 psql -X -h "$srcdir" -p "$srcport" -U postgres -d postgres -Atc \
  "SELECT string_agg(datname, ' ' ORDER BY datname) FROM pg_database WHERE datname NOT IN ('postgres', 'template0', 'template1', 'regression')")
tablespaces=$(pg18 psql -X -h "$srcdir" -p "$srcport" -U postgres -d postgres -Atc \
  "SELECT string_agg(spcname, ' ' ORDER BY spcname) FROM pg_tablespace WHERE spcname NOT LIKE 'pg\\_%'")
pg18 pg_dump -h "$srcdir" -p "$srcport" -U postgres -d regression --restrict-key="$restrict_key" \
  -f "$out/regression.sql.tmp" 2>"$out/pg_dump.log" || { cat "$out/pg_dump.log"; die "pg_dump failed"; }
mv "$out/regression.sql.tmp" "$out/regression.sql"
pg18 pg_dumpall -h "$srcdir" -p "$srcport" -U postgres --roles-only --no-role-passwords \
  --restrict-key="$restrict_key" 2>>"$out/pg_dump.log" \
  | grep -vE '^(CREATE ROLE postgres;)$' >"$out/regression-roles.sql"
roles_count=$(grep -c '^CREATE ROLE' "$out/regression-roles.sql" || true)
say "dumped: $out/regression.sql ($(du -h "$out/regression.sql" | cut -f1)), $out/regression-roles.sql ($roles_count roles) ($(elapsed "$t"))"
t_dump=$(elapsed "$t")

# Object counts: statements by their leading keywords ("CREATE TABLE", "ALTER TABLE ... ADD
# CONSTRAINT", "COPY", ...). pg_dump puts the action of ALTER TABLE on the next line.
count_statements() {
  awk '
    function kind(line,   w, n, i, k) {
      n = split(line, w, /[ \t]+/)
      if (w[1] ~ /^(COPY|SELECT|COMMENT|GRANT|REVOKE)$/) return w[1]
      if (w[1] == "SECURITY") return "SECURITY LABEL"
      k = w[1]
      for (i = 2; i <= n && i <= 5; i++) {
        if (w[i] !~ /^[A-Z]+$/ || w[i] ~ /^(ONLY|IF|FOR|ON|IN|TO|AS)$/) break
        k = k " " w[i]
      }
      return k
    }
    /^(CREATE|ALTER|COPY|COMMENT|GRANT|REVOKE|SELECT|SECURITY LABEL) / {
      line = $0
      if ($1 == "ALTER" && line !~ /;$/ && (getline nxt) > 0) line = line " " nxt
      k = kind(line)
      if ($1 == "ALTER") {
        if (line ~ / OWNER TO /) k = k " ... OWNER TO"
        else if (line ~ / ADD CONSTRAINT .* PRIMARY KEY/) k = k " ... ADD CONSTRAINT (primary key)"
        else if (line ~ / ADD CONSTRAINT .* FOREIGN KEY/) k = k " ... ADD CONSTRAINT (foreign key)"
        else if (line ~ / ADD CONSTRAINT /) k = k " ... ADD CONSTRAINT (other)"
        else if (line ~ / ATTACH PARTITION /) k = k " ... ATTACH PARTITION"
        else if (line ~ / SET DEFAULT /) k = k " ... SET DEFAULT"
        else if (line ~ / CLUSTER ON /) k = k " ... CLUSTER ON"
        else if (line ~ / REPLICA IDENTITY /) k = k " ... REPLICA IDENTITY"
        else k = k " ..."
      }
      n[k]++
    }
    END { for (k in n) printf "%6d  %s\n", n[k], k }' "$1" | sort -k2
}

# --- 6. restore check -------------------------------------------------------------------------
restore_summary="not run (--no-verify)"
if [ "$verify" -eq 1 ]; then
  t=$SECONDS
  start_cluster dstdir
  dstport="$(cat "$dstdir/port")"
  say "restore check: loading the dumps into a fresh cluster $dstdir (port $dstport)"
  {
    pg18 psql -X -h "$dstdir" -p "$dstport" -U postgres -d postgres -v ON_ERROR_STOP=0 -f "$out/regression-roles.sql"
    pg18 psql -X -h "$dstdir" -p "$dstport" -U postgres -d postgres -c 'CREATE DATABASE regression TEMPLATE template0'
    pg18 psql -X -h "$dstdir" -p "$dstport" -U postgres -d regression -v ON_ERROR_STOP=0 -f "$out/regression.sql"
  } >"$out/restore.log" 2>&1 || true
  restore_errors=$(grep -c 'ERROR:' "$out/restore.log" || true)
  pg18 pg_dump -h "$dstdir" -p "$dstport" -U postgres -d regression --restrict-key="$restrict_key" \
    -f "$dstdir/restored.sql" 2>>"$out/restore.log" || true
  diff -u "$out/regression.sql" "$dstdir/restored.sql" >"$out/restore.diff" || true
  diff_lines=$(grep -cE '^[-+][^-+]' "$out/restore.diff" || true)
  restore_summary="$restore_errors errors (restore.log), re-dump differs from regression.sql in $diff_lines lines (restore.diff)"
  say "restore check: $restore_summary ($(elapsed "$t"))"
  t_restore=$(elapsed "$t")
fi

# --- 7. summary -------------------------------------------------------------------------------
{
  echo "# scripts/regression-database.sh, $(date -u +%Y-%m-%dT%H:%M:%SZ)"
  echo "server: $server_version; regression suite: PostgreSQL $(cat "$out/src/VERSION"); pg_dump: $(pg18 pg_dump --version)"
  echo "regress.so: $pkglibdir/regress.so (copy: $out/regress.so); also needed: $pkglibdir/autoinc.so $pkglibdir/refint.so"
  echo "pg_regress: exit $regress_rc, $regress_line; $ok_tests ok, $failed_tests failed: ${failed_names:-none}"
  echo "other databases left by the tests: ${other_dbs:-none}; tablespaces: ${tablespaces:-none}"
  echo "regression.sql: $(du -h "$out/regression.sql" | cut -f1), $(wc -l <"$out/regression.sql") lines; regression-roles.sql: $roles_count roles"
  echo "restore into a fresh PostgreSQL 15 cluster: $restore_summary"
  echo "timings: pg_regress $t_regress, dumps $t_dump, restore check ${t_restore:-skipped}, total $(elapsed "$t_all")"
  echo
  echo "statements in regression.sql by leading keywords:"
  count_statements "$out/regression.sql"
} >"$out/summary.txt"
echo "$stamp" >"$out/stamp"
if [ "$keep_running" -eq 1 ]; then
  keep_dir="$srcdir"
  {
    echo
    echo "source cluster left running: host=$srcdir port=$srcport user=postgres dbname=regression"
    echo "stop it with: $([ "$(id -u)" -eq 0 ] && echo 'runuser -u postgres -- ')$pg15_bin/pg_ctl -D $srcdir/data -m fast stop && rm -rf $srcdir"
  } >>"$out/summary.txt"
fi
say "done in $(elapsed "$t_all"): $out/summary.txt"
sed -n '1,9p' "$out/summary.txt"
[ "$keep_running" -eq 1 ] && tail -n 2 "$out/summary.txt"
exit 0
