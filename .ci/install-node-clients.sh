#!/usr/bin/env bash
# Installs the Node client libraries that tests/clients_node.rs drives (@octokit/rest, gitea-js,
# @gitbeaker/rest), exactly as pinned in tests/clients/node/package-lock.json, with `npm ci`.
# Run it before `cargo test` on a fresh machine; it needs Node 20 or later and npm. Idempotent:
# when node_modules already holds what the lock file names, it does nothing.
#
# npm warns EBADENGINE for content-type 3.x (a dependency of @octokit/request that declares
# node >= 22); the tests run it on Node 20 without trouble.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/../tests/clients/node"

command -v node >/dev/null || { echo "install-node-clients: node is not installed (Node 20 or later is needed)" >&2; exit 1; }
command -v npm >/dev/null || { echo "install-node-clients: npm is not installed" >&2; exit 1; }
major="$(node -p 'process.versions.node.split(".")[0]')"
if [ "$major" -lt 20 ]; then
  echo "install-node-clients: Node $(node --version) is too old; Node 20 or later is needed" >&2
  exit 1
fi

stamp=node_modules/.forgebridge-installed
want="$(sha256sum package.json package-lock.json | sha256sum | cut -d' ' -f1) node-$major"
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] \
    && [ -f node_modules/@octokit/rest/package.json ] && [ -f node_modules/gitea-js/package.json ] \
    && [ -f node_modules/@gitbeaker/rest/package.json ]; then
  echo "install-node-clients: up to date ($(pwd)/node_modules)"
  exit 0
fi

echo "install-node-clients: npm ci in $(pwd) (node $(node --version), npm $(npm --version))"
npm ci --no-audit --no-fund
echo "$want" > "$stamp"
npm ls --depth=0
