#!/usr/bin/env bash
# Installs everything gatehouse needs to build, test and benchmark on Debian 12.
set -euo pipefail
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
# clang builds the fuzzers (scripts/fuzz.sh); libclang-rt-14-dev holds libFuzzer and the sanitizer
# runtimes (clang only recommends it), llvm the llvm-symbolizer that makes crash reports readable.
$SUDO apt-get install -y -qq --no-install-recommends \
  g++ meson ninja-build pkg-config ca-certificates \
  libasio-dev libssl-dev nlohmann-json3-dev libcpp-httplib-dev doctest-dev node-llhttp \
  curl openssl nginx-light wrk procps clang libclang-rt-14-dev llvm >/dev/null
# Node.js runs the test-only JOSE tools (tests/interop); keep an existing installation.
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  $SUDO apt-get install -y -qq --no-install-recommends nodejs npm >/dev/null
fi
