#!/usr/bin/env bash
# Installs the dependencies when some are missing (Debian 12: scripts/install-deps.sh), builds the
# gatehouse program and starts the demo gateway.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
# shellcheck source=build-options
. scripts/build-options
# shellcheck disable=SC2086
if [ ! -f build/build.ninja ]; then meson setup build $GATEHOUSE_BUILD_OPTIONS >/dev/null; fi  # missing or half set up
ninja -C build examples/gatehouse/gatehouse
exec ./build/examples/gatehouse/gatehouse --demo
