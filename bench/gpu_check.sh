#!/usr/bin/env bash
# The prepared GPU check (issue 21): one command for a lent GPU machine.
#
#   bash bench/gpu_check.sh [--out DIR] [--budget-s N] [--wheels DIR] [--smallest] [more bench/gpu_check.py options]
#
# Finds a Python that imports torch and torchvision ($PYTHON, .venv/bin/python, python3, python); where
# none does and --wheels DIR is given, installs them from DIR (no index: the machine may have no network).
# Other wheels in DIR (pure-Python packages the project needs that the machine lacks, e.g. jsonschema)
# go to a folder of their own on PYTHONPATH. The project runs from lib/ (no install needed).
# Then bench/gpu_check.py writes DIR/gpu_check.json and DIR/gpu_check.txt after every section
# (default DIR: $OUT if set, else bench/out), and its output also goes to DIR/gpu_check.log.
# The budget (default 480 s, 120 with --smallest) is the whole command's, from its start; a hard stop
# 45 s later guards against a hang outside the sections' own time boxes.
set -u
export GPU_CHECK_STARTED="$(date +%s.%N)"  # the budget counts from here
cd "$(dirname "${BASH_SOURCE[0]}")/.." || exit 1

out="${OUT:-bench/out}"
wheels=""
budget=""
smallest=0
args=()
while [ $# -gt 0 ]; do
  case "$1" in
    --out) out="$2"; shift 2 ;;
    --out=*) out="${1#*=}"; shift ;;
    --wheels) wheels="$2"; shift 2 ;;
    --wheels=*) wheels="${1#*=}"; shift ;;
    --budget-s) budget="$2"; shift 2 ;;
    --budget-s=*) budget="${1#*=}"; shift ;;
    --smallest) smallest=1; args+=("$1"); shift ;;
    *) args+=("$1"); shift ;;
  esac
done
[ -n "$budget" ] || { [ "$smallest" = 1 ] && budget=120 || budget=480; }
mkdir -p "$out" || exit 1
rm -f "$out/gpu_check.json" "$out/gpu_check.txt"  # a report left by an earlier run must not pass for this one's
log="$out/gpu_check.log"
: >"$log"
say() { echo "[gpu_check.sh] $*" | tee -a "$log"; }

# Whether a candidate has torch and torchvision, without importing them (that takes seconds): where
# it is and which torch it has, or a failure.
probe() {
  "$1" -c "import sys, importlib.util as u, importlib.metadata as m
assert u.find_spec('torch') and u.find_spec('torchvision')
print(sys.executable + ', torch ' + m.version('torch'))" 2>/dev/null
}
py=""
found=""
for candidate in "${PYTHON:-}" .venv/bin/python python3 python; do
  if [ -n "$candidate" ] && command -v "$candidate" >/dev/null 2>&1 && found="$(probe "$candidate")"; then
    py="$candidate"
    break
  fi
done
setup=""
site="${TMPDIR:-/tmp}/gpu_check_site"
if [ -z "$py" ]; then
  py="$(command -v python3 || command -v python || true)"
  if [ -n "$py" ] && [ -n "$wheels" ]; then
    # A venv over the system's packages first (their numpy etc. count as installed); where venv or
    # pip cannot, a folder of its own on PYTHONPATH (works where the system Python is externally managed).
    say "no Python here imports torch: installing torch and torchvision from $wheels"
    venv="${TMPDIR:-/tmp}/gpu_check_venv"
    if "$py" -m venv --system-site-packages "$venv" >>"$log" 2>&1 \
        && "$venv/bin/python" -m pip install -q --no-index --no-cache-dir --find-links "$wheels" torch torchvision >>"$log" 2>&1; then
      py="$venv/bin/python"
      setup="torch and torchvision installed from $wheels into the venv $venv; "
    elif "$py" -m pip install -q --no-index --no-cache-dir --find-links "$wheels" --target "$site" torch torchvision >>"$log" 2>&1; then
      export PYTHONPATH="$site${PYTHONPATH:+:$PYTHONPATH}"
      setup="torch and torchvision installed from $wheels into $site; "
    fi
  fi
  if [ -z "$py" ] || ! found="$(probe "$py")"; then
    reason="no Python with torch and torchvision (tried \$PYTHON, .venv/bin/python, python3, python; wheels: ${wheels:-none given}); see gpu_check.log"
    say "$reason"
    printf '{"check": "noisetrain GPU check (issue 21)", "error": "%s", "sections": {}}\n' "$reason" >"$out/gpu_check.json"
    echo "noisetrain GPU check: FAILED before any section - $reason" >"$out/gpu_check.txt"
    exit 1
  fi
fi
setup="${setup}python $found"

if [ -n "$wheels" ]; then
  # Every other wheel given, without dependency resolution (the index is unreachable), into a folder of
  # its own: the interpreter's site-packages may be read-only, and its torch is left alone.
  extra=()
  for wheel in "$wheels"/*.whl; do
    case "$(basename "$wheel")" in
      torch-*|torchvision-*|triton-*|nvidia_*|nvidia-*) ;;
      *) [ -e "$wheel" ] && extra+=("$wheel") ;;
    esac
  done
  if [ ${#extra[@]} -gt 0 ]; then
    if "$py" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target "$site" "${extra[@]}" >>"$log" 2>&1; then
      export PYTHONPATH="$site${PYTHONPATH:+:$PYTHONPATH}"
      setup="$setup; ${#extra[@]} wheel(s) from $wheels on PYTHONPATH"
    else
      setup="$setup; installing the ${#extra[@]} wheel(s) from $wheels FAILED (see gpu_check.log)"
    fi
  fi
fi
say "$setup"

hard=$(( ${budget%.*} + 45 ))
GPU_CHECK_SETUP="$setup" PYTHONUNBUFFERED=1 timeout -k 10 "$hard" "$py" bench/gpu_check.py --out "$out" --budget-s "$budget" \
  ${args[@]+"${args[@]}"} 2>&1 | tee -a "$log"
rc=${PIPESTATUS[0]}
if [ "$rc" != 0 ] && [ ! -e "$out/gpu_check.json" ]; then  # it failed before its first report (torch's import?)
  reason="bench/gpu_check.py exited with $rc before its first report; see gpu_check.log"
  printf '{"check": "noisetrain GPU check (issue 21)", "error": "%s", "setup": "%s", "sections": {}}\n' "$reason" "$setup" \
    >"$out/gpu_check.json"
  echo "noisetrain GPU check: FAILED before any section - $reason" >"$out/gpu_check.txt"
fi
if [ "$rc" != 0 ]; then
  say "bench/gpu_check.py exited with $rc; the report holds the sections finished before that:"
  cat "$out/gpu_check.txt" 2>/dev/null
fi
exit "$rc"
