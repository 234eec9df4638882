#!/usr/bin/env bash
# Install test: gatehouse as an application gets it.
#
#   tests/install/run.sh [BUILD_DIR]
#
# BUILD_DIR is a configured gatehouse build directory (default: build); it must be built already
# (`meson test` builds it first). Without one, a build with -Dtests=false -Dexamples=false is
# configured and built in the temporary directory. Everything else happens in a temporary
# directory that is removed at the end; nothing is written to the source tree or BUILD_DIR.
#
#  1. `meson install --destdir` of BUILD_DIR; the installed headers must be exactly the files
#     under include/gatehouse, and gatehouse.pc must not point into the source or build tree.
#  2. tests/install/consumer.cpp (<gatehouse/gatehouse.hpp>, <gatehouse/testing.hpp>, a Gateway on
#     the program's own io_context serving one request over loopback) is compiled with the
#     compiler of BUILD_DIR, -Wall -Wextra -Werror and only `pkg-config --cflags gatehouse` (no
#     -std or -D of its own), then linked and run twice: against libgatehouse.so with
#     `pkg-config --libs`, and against libgatehouse.a with `pkg-config --static --libs`.
#  3. A Meson project (tests/install/subproject/meson.build) with this source tree as
#     subprojects/gatehouse: dependency('gatehouse') with a fallback, -Dgatehouse:tests=false
#     -Dgatehouse:examples=false, consumer.cpp with werror; built and run.
#
# Registered as the 'install' test (suite 'install') in tests/meson.build; skipped (exit 77) for a
# sanitizer build, whose library would need the sanitizer runtimes in every consumer.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
src=$(cd "$here/../.." && pwd)
tmp=$(mktemp -d "${TMPDIR:-/tmp}/gatehouse-install.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
# meson test sets MALLOC_PERTURB_ for the test; the compilers need not run with it.
unset MALLOC_PERTURB_

step() { echo "== $*"; }
fail() { echo "install test FAILED: $*" >&2; exit 1; }

build=${1:-$src/build}
if [ -f "$build/meson-info/intro-buildoptions.json" ]; then
  build=$(cd "$build" && pwd)
else
  step "no build in $build: configuring one in $tmp/build"
  build=$tmp/build
  meson setup "$build" "$src" -Dtests=false -Dexamples=false >/dev/null
  ninja -C "$build" >/dev/null
fi

# The compiler, prefix and libdir of BUILD_DIR, from Meson's introspection files.
info=$(python3 - "$build" <<'PY'
import json, os, shlex, sys
info = os.path.join(sys.argv[1], 'meson-info')
opts = {o['name']: o['value'] for o in json.load(open(os.path.join(info, 'intro-buildoptions.json')))
        if o.get('subproject') is None}
# The command that compiled libgatehouse (['ccache', 'c++'], say).
lib = next(t for t in json.load(open(os.path.join(info, 'intro-targets.json'))) if t['name'] == 'gatehouse')
cxx = next(s['compiler'] for s in lib['target_sources'] if s['language'] == 'cpp')
print('cxx=(' + ' '.join(shlex.quote(a) for a in cxx) + ')')
for name in ('prefix', 'libdir', 'includedir', 'b_sanitize'):
    print(f'{name}={shlex.quote(str(opts[name]))}')
PY
)
cxx=() prefix='' libdir='' includedir='' b_sanitize=''
eval "$info"
if [ "$b_sanitize" != none ]; then
  echo "skipped: $build is built with -Db_sanitize=$b_sanitize"
  exit 77
fi
case $libdir in /*) ;; *) libdir=$prefix/$libdir ;; esac
case $includedir in /*) ;; *) includedir=$prefix/$includedir ;; esac

# 1. Install.
step "meson install --destdir ($build, prefix $prefix)"
meson install -C "$build" --no-rebuild --quiet --destdir "$tmp/dest" >/dev/null
root=$tmp/dest$prefix
pc=$tmp/dest$libdir/pkgconfig/gatehouse.pc
[ -f "$pc" ] || fail "no gatehouse.pc in $tmp/dest$libdir/pkgconfig"
if ! diff -u --label 'source tree: include/gatehouse' --label 'installed: include/gatehouse' \
    <(cd "$src/include/gatehouse" && find . -type f ! -name meson.build | sort) \
    <(cd "$tmp/dest$includedir/gatehouse" && find . -type f | sort); then
  fail "the installed headers differ from include/gatehouse (see include/gatehouse/meson.build)"
fi
if grep -n -F -e "$src" -e "$build" -e "$tmp" "$pc"; then
  fail "gatehouse.pc refers to the source, build or staging directory"
fi

# 2. pkg-config, with a copy of gatehouse.pc whose prefix is the one inside the destdir (every
# other path in it is relative to ${prefix}: the check above).
grep -q -x -F "prefix=$prefix" "$pc" || fail "gatehouse.pc does not start from prefix=$prefix"
mkdir "$tmp/pkgconfig"
sed "s|^prefix=.*|prefix=$root|" "$pc" >"$tmp/pkgconfig/gatehouse.pc"
export PKG_CONFIG_PATH=$tmp/pkgconfig
cflags=$(pkg-config --cflags gatehouse)
libs=$(pkg-config --libs gatehouse)
static_libs=$(pkg-config --static --libs gatehouse)
step "pkg-config --cflags: $cflags"
step "pkg-config --libs: $libs; --static: $static_libs"
case " $static_libs " in *" -lgatehouse "*) ;; *) fail "no -lgatehouse in pkg-config --static --libs" ;; esac
mkdir "$tmp/pc"
# shellcheck disable=SC2086  # pkg-config output is a list of words
"${cxx[@]}" -Wall -Wextra -Werror $cflags -c "$here/consumer.cpp" -o "$tmp/pc/consumer.o" ||
  fail "consumer.cpp does not compile with pkg-config --cflags gatehouse (and -Wall -Wextra -Werror)"
# shellcheck disable=SC2086
"${cxx[@]}" "$tmp/pc/consumer.o" -o "$tmp/pc/consumer-shared" $libs ||
  fail "consumer does not link with pkg-config --libs gatehouse"
# The same flags with libgatehouse.a in place of -lgatehouse: Libs.private must cover its needs.
static_libs=" $static_libs "
# shellcheck disable=SC2086
"${cxx[@]}" "$tmp/pc/consumer.o" -o "$tmp/pc/consumer-static" \
    ${static_libs/ -lgatehouse / $tmp/dest$libdir/libgatehouse.a } ||
  fail "consumer does not link with libgatehouse.a and pkg-config --static --libs gatehouse"
if ldd "$tmp/pc/consumer-static" | grep -q libgatehouse; then fail "consumer-static links libgatehouse.so"; fi
step "run (shared)"
LD_LIBRARY_PATH=$tmp/dest$libdir timeout 60 "$tmp/pc/consumer-shared" || fail "consumer (shared) failed"
step "run (static)"
timeout 60 "$tmp/pc/consumer-static" || fail "consumer (static) failed"

# 3. Meson subproject.
step "Meson project with gatehouse as subprojects/gatehouse"
app=$tmp/app
mkdir -p "$app/subprojects"
cp "$here/subproject/meson.build" "$here/consumer.cpp" "$app/"
ln -s "$src" "$app/subprojects/gatehouse"
# buildtype plain (no -O) and the whole library as one unity file: it is compiled once more here,
# and only has to work (about a minute of CPU; with four sources per file, about five: at -O0
# parsing the headers again for each file is most of the cost).
CXX="${cxx[*]}" meson setup "$app/build" "$app" --force-fallback-for=gatehouse --buildtype=plain --unity=on \
    -Dunity_size=1000 \
    -Dgatehouse:tests=false -Dgatehouse:examples=false -Dgatehouse:default_library=static >"$app/setup.log" ||
  { cat "$app/setup.log"; fail "meson setup of the consumer project"; }
ninja -C "$app/build" >"$app/build.log" || { cat "$app/build.log"; fail "the consumer project does not build"; }
if grep -n -i 'warning' "$app/build.log"; then fail "warnings while building the consumer project"; fi
step "run (subproject)"
timeout 60 "$app/build/consumer" || fail "consumer (subproject) failed"
echo "install test passed"
