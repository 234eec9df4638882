#!/usr/bin/env bash
# Installs the dependencies (Debian 12), builds gatehouse and starts the demo gateway.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
if [ ! -d build ]; then meson setup build >/dev/null; fi
ninja -C build examples/gatehouse/gatehouse
exec ./build/examples/gatehouse/gatehouse --demo
