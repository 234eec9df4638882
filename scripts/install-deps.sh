#!/usr/bin/env bash
# Installs everything gatehouse needs to build, test, fuzz and benchmark on Debian 12.
#
# Cheap when there is nothing to do: it asks dpkg which packages are missing and calls apt-get
# only for those, so scripts/test.sh and scripts/demo.sh run it every time. Runs apt-get through
# sudo when not root. GATEHOUSE_SKIP_DEPS=1 skips it (for machines set up another way).
set -euo pipefail

if [ -n "${GATEHOUSE_SKIP_DEPS:-}" ]; then exit 0; fi

# clang builds the fuzzers (scripts/fuzz.sh); libclang-rt-14-dev holds libFuzzer and the sanitizer
# runtimes (clang only recommends it), llvm the llvm-symbolizer that makes crash reports readable.
# nginx-light and wrk are for bench/; curl, openssl and procps for the tests and bench/.
# libhiredis-dev: the RESP reply parser of the Redis client; redis-server (and its Sentinel mode)
# for the tests of the client, the shared rate limits and the shared bans.
# prometheus ships promtool, with which the tests check a metrics scrape (Debian has no smaller
# package holding it).
PACKAGES=(
  g++ meson ninja-build pkg-config ca-certificates
  libasio-dev libssl-dev nlohmann-json3-dev libcpp-httplib-dev doctest-dev node-llhttp
  curl openssl nginx-light wrk procps clang libclang-rt-14-dev llvm prometheus
  libhiredis-dev redis-server
  # The WAF middleware: ModSecurity v3 and the OWASP Core Rule Set; the nginx module for bench/waf_run.sh.
  libmodsecurity-dev modsecurity-crs libnginx-mod-http-modsecurity
)

if ! command -v dpkg-query >/dev/null || ! command -v apt-get >/dev/null; then
  echo "install-deps.sh: this is not a Debian system (no dpkg-query or apt-get)." >&2
  echo "Install these packages (or their equivalents) yourself: ${PACKAGES[*]} nodejs npm" >&2
  echo "then run again with GATEHOUSE_SKIP_DEPS=1." >&2
  exit 1
fi

# One dpkg-query for all of them; a package dpkg has never heard of is simply not listed.
installed=" $(dpkg-query -W -f='${Package}:${db:Status-Status} ' "${PACKAGES[@]}" 2>/dev/null || true) "
missing=()
for p in "${PACKAGES[@]}"; do
  if [[ "$installed" != *" $p:installed "* ]]; then missing+=("$p"); fi
done
# Node.js and npm run the test-only JOSE and OpenID tools (tests/interop); keep an existing
# installation, whichever way it was installed.
if ! command -v node >/dev/null; then missing+=(nodejs); fi
if ! command -v npm >/dev/null; then missing+=(npm); fi
if [ ${#missing[@]} -eq 0 ]; then exit 0; fi

SUDO=()
if [ "$(id -u)" -ne 0 ]; then
  if ! command -v sudo >/dev/null; then
    echo "install-deps.sh: missing packages: ${missing[*]}" >&2
    echo "Not root and no sudo: install them as root (apt-get install ${missing[*]}), then run again." >&2
    exit 1
  fi
  SUDO=(sudo)
fi
echo "install-deps.sh: installing ${missing[*]}"
# env: sudo does not pass the caller's environment on.
"${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq
"${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive \
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
