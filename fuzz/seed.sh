#!/usr/bin/env bash
# Fills fuzz/corpus/manifest and fuzz/corpus/zip with starting points, so that mutations start
# from inputs that get far (a manifest that validates, a zip that is a package):
#   manifest: the examples' and the doctor fixtures' iiswsgi.toml;
#   zip: the packages `iiswsgi package` builds from the examples, and the smallest of them
#        re-zipped by Info-ZIP (to a file, and to a pipe, with data descriptors) and Python.
# Usage: fuzz/seed.sh [path/to/iiswsgi]   (default: target/debug/iiswsgi; build it first)
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
bin="${1:-$root/target/debug/iiswsgi}"
corpus="$root/fuzz/corpus"
mkdir -p "$corpus/manifest" "$corpus/zip"
for f in "$root"/examples/*/iiswsgi.toml "$root"/tests/fixtures/doctor/*/iiswsgi.toml; do
  cp "$f" "$corpus/manifest/$(basename "$(dirname "$f")").toml"
done
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
for ex in "$root"/examples/*/; do
  SOURCE_DATE_EPOCH=1700000000 "$bin" package "$ex" --out "$tmp/dist" >/dev/null 2>&1
done
cp "$tmp"/dist/*.zip "$corpus/zip/"
small="$(ls -S "$tmp"/dist/*.zip | tail -n 1)"
mkdir "$tmp/tree"
unzip -q "$small" -d "$tmp/tree"
(cd "$tmp/tree" && zip -q -r "$corpus/zip/info-zip.zip" . && zip -q -r - . | cat > "$corpus/zip/streamed.zip")
python3 - "$tmp/tree" "$corpus/zip/python.zip" <<'PY'
import os, sys, zipfile
os.chdir(sys.argv[1])
with zipfile.ZipFile(sys.argv[2], "w", zipfile.ZIP_DEFLATED) as z:
    for top, dirs, files in os.walk("."):
        for name in dirs + files:
            z.write(os.path.join(top, name)[2:])
PY
ls -l "$corpus/manifest" "$corpus/zip"
