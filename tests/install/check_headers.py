#!/usr/bin/env python3
"""Fails when a file in include/gatehouse is not a header or is not installed where it belongs.

    check_headers.py BUILD_DIR SOURCE_DIR

Every file under SOURCE_DIR/include/gatehouse but meson.build must be a .hpp and must be in Meson's
install plan (BUILD_DIR/meson-info/intro-installed.json) as <includedir>/gatehouse/<its path>,
installed by itself or with a folder that holds it. Run as the 'public-headers' test.
"""
import json
import os
import sys


def main() -> int:
    build_dir, source_dir = (os.path.realpath(p) for p in sys.argv[1:3])
    header_root = os.path.join(source_dir, 'include', 'gatehouse')
    info = os.path.join(build_dir, 'meson-info')
    with open(os.path.join(info, 'intro-installed.json'), encoding='utf-8') as f:
        installed = {os.path.realpath(src): os.path.normpath(dst) for src, dst in json.load(f).items()}
    with open(os.path.join(info, 'intro-buildoptions.json'), encoding='utf-8') as f:
        options = {o['name']: o['value'] for o in json.load(f) if o.get('subproject') is None}
    include_dir = os.path.join(options['prefix'], options['includedir'], 'gatehouse')

    def destination(path: str):
        """Where Meson installs `path`: its own entry, or the entry of a folder above it."""
        rel = ''
        while True:
            if path in installed:
                return os.path.normpath(os.path.join(installed[path], rel))
            parent = os.path.dirname(path)
            if parent == path:
                return None
            rel = os.path.join(os.path.basename(path), rel) if rel else os.path.basename(path)
            path = parent

    problems = []
    headers = 0
    for root, dirs, files in os.walk(header_root):
        dirs.sort()
        for name in sorted(files):
            path = os.path.join(root, name)
            rel = os.path.relpath(path, header_root)
            if rel == 'meson.build':
                continue
            if not name.endswith('.hpp'):
                problems.append(f'include/gatehouse/{rel}: only public headers (.hpp) belong in include/gatehouse')
                continue
            headers += 1
            want = os.path.normpath(os.path.join(include_dir, rel))
            got = destination(os.path.realpath(path))
            if got is None:
                problems.append(f'include/gatehouse/{rel} is not installed (see include/gatehouse/meson.build)')
            elif got != want:
                problems.append(f'include/gatehouse/{rel} is installed as {got}, not {want}')
    for problem in problems:
        print(problem)
    if problems:
        return 1
    print(f'{headers} public headers, all installed under {include_dir}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
