#!/usr/bin/env sh
# Writes the secrets docker-compose.yml reads, one env file per audience, each
# readable by its owner only. Existing files are kept: rotating a token is
# deleting its file and running this again (then `docker compose up -d`).
#
#   deploy/secrets/generate.sh [DIR]     (default: the folder of this script)
set -eu
dir=${1:-$(dirname "$0")}
mkdir -p "$dir"
umask 077

token() { od -An -tx1 -N32 /dev/urandom | tr -d ' \n'; }

write() { # file, then KEY=VALUE lines
  f="$dir/$1"; shift
  if [ -e "$f" ]; then echo "kept    $f"; return; fi
  printf '%s\n' "$@" > "$f"
  echo "wrote   $f"
}

write admin.env "ESIMFLOW_ADMIN_TOKEN=$(token)"
write ingest.env "ESIMFLOW_INGEST_TOKENS=$(token)"
write grafana.env "GF_SECURITY_ADMIN_PASSWORD=$(token)"
