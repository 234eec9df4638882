#!/usr/bin/env bash
# Fuzzes with libFuzzer (tests/fuzz): the token parsers (jwt_fuzz, jwk_fuzz, b64_json_fuzz) and the
# HTTP/1 front (http1_request_fuzz, canonical_path_fuzz, host_fuzz, forward_fuzz); by name only,
# the configuration loader (config_fuzz), whose build compiles the whole library with clang.
#
#   scripts/fuzz.sh                        the default targets: FUZZ_SECONDS (default 60) seconds for
#                                          each token parser, FUZZ_FRONT_SECONDS (default half of
#                                          FUZZ_SECONDS) for each HTTP/1 target
#   FUZZ_SECONDS=600 scripts/fuzz.sh jwt_fuzz   a target named on the command line gets FUZZ_SECONDS
#   FUZZ_SECONDS=300 scripts/fuzz.sh config_fuzz
#
# Needs clang (scripts/install-deps.sh installs it). Configures build-fuzz (FUZZ_BUILD_DIR) with
# clang++, ASan + UBSan and -Dfuzz=true when it is missing, and builds only the fuzz targets. Each
# target starts from a copy of its seed corpus (tests/fuzz/corpus/<target>) in a temporary
# directory, so generated inputs never land in the source tree. On a crash, leak, timeout or
# failed invariant the script prints the reproducer's path, keeps the temporary directory and exits
# non-zero; replay a reproducer with: build-fuzz/tests/fuzz/<target> <file>
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR=${FUZZ_BUILD_DIR:-build-fuzz}
FUZZ_SECONDS=${FUZZ_SECONDS:-60}
FUZZ_FRONT_SECONDS=${FUZZ_FRONT_SECONDS:-$((FUZZ_SECONDS / 2))}
TOKEN_TARGETS=(jwt_fuzz jwk_fuzz b64_json_fuzz)
FRONT_TARGETS=(http1_request_fuzz canonical_path_fuzz host_fuzz forward_fuzz)
if [ $# -gt 0 ]; then
  targets=("$@")
  FUZZ_FRONT_SECONDS=$FUZZ_SECONDS
else
  targets=("${TOKEN_TARGETS[@]}" "${FRONT_TARGETS[@]}")
fi

seconds_for() {
  case " ${FRONT_TARGETS[*]} " in
    *" $1 "*) echo "$FUZZ_FRONT_SECONDS" ;;
    *) echo "$FUZZ_SECONDS" ;;
  esac
}

max_len() {
  case "$1" in
    jwt_fuzz) echo 16384 ;;  # twice the verifier's default max_token_bytes
    jwk_fuzz) echo 8192 ;;   # room for a 16384-bit RSA key
    config_fuzz) echo 8192 ;;
    *) echo 4096 ;;
  esac
}

if [ ! -d "$BUILD_DIR" ]; then
  CXX=${FUZZ_CXX:-clang++} CC=${FUZZ_CC:-clang} meson setup "$BUILD_DIR" -Dfuzz=true -Dtests=false \
    -Dexamples=false -Db_sanitize=address,undefined -Db_lundef=false >/dev/null
fi
paths=()
for t in "${targets[@]}"; do paths+=("tests/fuzz/$t"); done
ninja -C "$BUILD_DIR" -j "${FUZZ_JOBS:-$(nproc)}" "${paths[@]}"

export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1}
work=$(mktemp -d "${TMPDIR:-/tmp}/gatehouse-fuzz.XXXXXX")
failed=0
for t in "${targets[@]}"; do
  dir="$work/$t"
  mkdir -p "$dir/corpus"
  cp tests/fuzz/corpus/"$t"/* "$dir/corpus/"
  secs=$(seconds_for "$t")
  echo "== $t: ${secs}s from $(find "$dir/corpus" -type f | wc -l) seeds"
  if "$BUILD_DIR/tests/fuzz/$t" -max_total_time="$secs" -max_len="$(max_len "$t")" \
      -rss_limit_mb=2048 -timeout=5 -print_final_stats=1 -artifact_prefix="$dir/" \
      "$dir/corpus" >"$dir/fuzz.log" 2>&1; then
    grep -E '^#[0-9]+[[:space:]]+DONE' "$dir/fuzz.log" | tail -n 1 || true
    grep -E '^stat::(average_exec_per_sec|peak_rss_mb)' "$dir/fuzz.log" || true
  else
    failed=1
    tail -n 60 "$dir/fuzz.log"
    for artifact in "$dir"/crash-* "$dir"/leak-* "$dir"/timeout-* "$dir"/oom-*; do
      if [ -e "$artifact" ]; then echo "$t FAILED; reproducer: $artifact (log: $dir/fuzz.log)"; fi
    done
    echo "$t FAILED; replay with: $BUILD_DIR/tests/fuzz/$t <reproducer>"
  fi
done
if [ "$failed" -ne 0 ]; then
  echo "fuzzing found a problem; inputs and logs kept in $work"
  exit 1
fi
rm -rf "$work"
