#!/usr/bin/env bash
# `make demo`. Until the end-to-end network demo lands (`finp2p demo`, issue 9), this walks through what the node
# does today: a config, its validation, the store migrated on start, and the loaded plugins.
set -euo pipefail
FINP2P=${FINP2P:-.venv/bin/finp2p}
if "$FINP2P" demo --help >/dev/null 2>&1; then exec "$FINP2P" demo "$@"; fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
step() { printf '\n\033[1m== %s\033[0m\n' "$1"; }
step "write a node config";            "$FINP2P" config init "$work/node.toml" --name demo-bank
step "check it";                       "$FINP2P" config check "$work/node.toml"
step "a wrong value is named";         printf '[store]\npool_size = 0\n' > "$work/bad.toml"
"$FINP2P" config check "$work/bad.toml" || echo "(exit status $?: configuration error)"
step "migrate the store (SQLite in the node's data directory)"
"$FINP2P" -c "$work/node.toml" store migrate
"$FINP2P" -c "$work/node.toml" store status
step "loaded plugins";                 "$FINP2P" -c "$work/node.toml" plugins
printf '\nThe network story (governance, registration, discovery, a transfer with its receipt) comes with the\n'
printf 'asset-transactions work; see README.md for what is built so far.\n'
