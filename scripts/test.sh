#!/usr/bin/env bash
# Builds gatehouse and runs the whole test suite (unit, config and loopback integration tests).
#
# Sets itself up: installs the Debian packages it needs when some are missing
# (scripts/install-deps.sh, through sudo when not root; a no-op when all are there), configures
# BUILD_DIR (default build; with MESON_ARGS if set, else scripts/build-options) when it is not set up
# yet, and installs the test-only npm packages pinned in tests/interop/package-lock.json.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
BUILD_DIR=${BUILD_DIR:-build}
# A new build directory gets scripts/build-options unless MESON_ARGS says otherwise.
# shellcheck source=build-options
. scripts/build-options
if [ ! -f "$BUILD_DIR/build.ninja" ]; then  # missing, or a set-up that failed half-way
  # shellcheck disable=SC2086
  meson setup "$BUILD_DIR" ${MESON_ARGS-$GATEHOUSE_BUILD_OPTIONS} >/dev/null
fi
ninja -C "$BUILD_DIR"
# Test-only npm tools, pinned by tests/interop/package-lock.json.
# Installed again when the lock file is newer than the installed tree (a dependency was added).
if [ ! -f tests/interop/node_modules/.package-lock.json ] ||
   [ tests/interop/package-lock.json -nt tests/interop/node_modules/.package-lock.json ]; then
  npm ci --prefix tests/interop --no-audit --no-fund --loglevel=error
fi
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1}
meson test -C "$BUILD_DIR" --print-errorlogs --num-processes 1
