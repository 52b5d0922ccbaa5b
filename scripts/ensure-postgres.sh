#!/usr/bin/env bash
# Installs Debian's PostgreSQL server binaries when they are missing. The tests start their own throwaway
# server with initdb/pg_ctl, so the package's default cluster is not created and no service is started.
set -euo pipefail

if compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null; then
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
  SUDO=sudo
  command -v sudo >/dev/null || { echo "PostgreSQL is missing and this user cannot install it: run 'apt-get install postgresql' as root." >&2; exit 1; }
else
  SUDO=
fi
echo "installing PostgreSQL from Debian (once per machine)"
export DEBIAN_FRONTEND=noninteractive
$SUDO mkdir -p /etc/postgresql-common
if ! grep -qs '^create_main_cluster *= *false' /etc/postgresql-common/createcluster.conf; then
  echo "create_main_cluster = false" | $SUDO tee -a /etc/postgresql-common/createcluster.conf >/dev/null
fi
# policy-rc.d tells the package scripts not to start services: the tests start their own server.
had_policy=1; [ -e /usr/sbin/policy-rc.d ] || had_policy=0
if [ "$had_policy" = 0 ]; then printf '#!/bin/sh\nexit 101\n' | $SUDO tee /usr/sbin/policy-rc.d >/dev/null; $SUDO chmod +x /usr/sbin/policy-rc.d; fi
trap '[ "$had_policy" = 0 ] && $SUDO rm -f /usr/sbin/policy-rc.d' EXIT
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends postgresql >/dev/null
compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null || { echo "PostgreSQL installed, but initdb is not found" >&2; exit 1; }
