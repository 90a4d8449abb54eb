#!/usr/bin/env bash
# Package benchmark: `iiswsgi package` (release build) against `zip -r -q -6` on the same
# generated tree (bench/gen_tree.py: 20,000 files, ~200 MB, text, code-like and binary).
# Prints wall time, peak RSS (/usr/bin/time -v) and output size side by side, then checks the
# targets of issue #3: wall <= 0.7 x zip's, size within 3% of zip's, peak RSS <= 64 MiB.
#
# usage: bench/package.sh [--runs N] [--files N] [--total-mb N] [--keep]
#   BENCH_DIR (default /tmp/iiswsgi-package-bench) holds the tree (reused between runs) and
#   the outputs. Not run by `cargo test`.
set -euo pipefail
cd "$(dirname "$0")/.."

runs=3
files=20000
total_mb=200
keep=0
while (($#)); do
  case "$1" in
    --runs) runs="$2"; shift 2 ;;
    --files) files="$2"; shift 2 ;;
    --total-mb) total_mb="$2"; shift 2 ;;
    --keep) keep=1; shift ;;
    *) echo "unknown argument: $1" >&2; exit 2 ;;
  esac
done

bench="${BENCH_DIR:-/tmp/iiswsgi-package-bench}"
tree="$bench/tree-$files-$total_mb"
out="$bench/out"
command -v zip >/dev/null || { echo "zip is missing: run .ci/setup" >&2; exit 1; }
[ -x /usr/bin/time ] || { echo "/usr/bin/time is missing: run .ci/setup (Debian package time)" >&2; exit 1; }

echo "== building release iiswsgi (packaging needs no Python: --no-default-features)"
cargo build --release --no-default-features --quiet
bin="$PWD/target/release/iiswsgi"

if [ ! -f "$tree/iiswsgi.toml" ]; then
  echo "== generating $tree"
  rm -rf "$tree"
  python3 bench/gen_tree.py "$tree" --files "$files" --total-mb "$total_mb"
  cat > "$tree/iiswsgi.toml" <<'EOF'
[app]
name = "Bench"
version = "1.0.0"

[wsgi]
app = "app:application"
EOF
fi
mkdir -p "$out"
echo "tree: $(find "$tree" -type f | wc -l) files, $(du -sb "$tree" | cut -f1) bytes"
echo "cpus: $(nproc), load: $(cut -d' ' -f1-3 /proc/loadavg)"

# measure NAME CMD...: runs CMD under /usr/bin/time -v; prints "wall_seconds max_rss_kib".
measure() {
  local log="$out/time.log"
  /usr/bin/time -v -o "$log" "$@" >/dev/null
  local wall rss
  wall=$(awk -F': ' '/Elapsed \(wall clock\)/ {print $2}' "$log" | awk -F: '{ if (NF==3) print $1*3600+$2*60+$3; else print $1*60+$2 }')
  rss=$(awk -F': ' '/Maximum resident set size/ {print $2}' "$log")
  echo "$wall $rss"
}

run_iiswsgi() { rm -f "$out"/Bench-*; measure "$bin" package "$tree" --out "$out" --base-url https://downloads.example.invalid/; }
run_zip() { rm -f "$out/zip.zip"; (cd "$tree" && measure zip -r -q -6 "$out/zip.zip" .); }

echo "== warm-up (page cache)"
run_iiswsgi >/dev/null
run_zip >/dev/null

best() { sort -n | head -1; }
i_walls=(); i_rss=(); z_walls=(); z_rss=()
for ((r = 1; r <= runs; r++)); do
  read -r w m < <(run_iiswsgi); i_walls+=("$w"); i_rss+=("$m")
  read -r w m < <(run_zip); z_walls+=("$w"); z_rss+=("$m")
  echo "run $r: iiswsgi ${i_walls[-1]} s ${i_rss[-1]} KiB | zip ${z_walls[-1]} s ${z_rss[-1]} KiB"
done
i_wall=$(printf '%s\n' "${i_walls[@]}" | best)
z_wall=$(printf '%s\n' "${z_walls[@]}" | best)
i_peak=$(printf '%s\n' "${i_rss[@]}" | sort -n | tail -1)
z_peak=$(printf '%s\n' "${z_rss[@]}" | sort -n | tail -1)
i_size=$(stat -c %s "$out/Bench-1.0.0.zip")
z_size=$(stat -c %s "$out/zip.zip")

report=$(awk -v iw="$i_wall" -v zw="$z_wall" -v ir="$i_peak" -v zr="$z_peak" -v is="$i_size" -v zs="$z_size" 'BEGIN {
  printf "\n%-22s %12s %14s %14s\n", "tool", "wall (best)", "peak RSS", "output bytes"
  printf "%-22s %10.2f s %10.1f MiB %14d\n", "iiswsgi package", iw, ir / 1024, is
  printf "%-22s %10.2f s %10.1f MiB %14d\n", "zip -r -q -6", zw, zr / 1024, zs
  ratio = iw / zw; diff = (is - zs) * 100 / zs; rss = ir / 1024
  printf "\nwall ratio %.2f (target <= 0.70), size %+.2f%% (target within 3%%), peak RSS %.1f MiB (target <= 64)\n", ratio, diff, rss
  fail = 0
  if (ratio > 0.70) { print "FAIL: wall time"; fail = 1 }
  if (diff > 3 || diff < -3) { print "FAIL: size"; fail = 1 }
  if (rss > 64) { print "FAIL: peak RSS"; fail = 1 }
  if (!fail) print "all targets met"
}')
echo "$report"
fail=0
grep -q '^FAIL' <<<"$report" && fail=1
unzip -tq "$out/Bench-1.0.0.zip" >/dev/null && echo "unzip -t: ok"
((keep)) || rm -rf "$out"
exit "$fail"
