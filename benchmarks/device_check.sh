#!/bin/sh
# The device check in one command, from any directory; src/ on the path, so it runs without `pip install -e .` too.
root="$(cd "$(dirname "$0")/.." && pwd)"
PYTHONPATH="$root/src${PYTHONPATH:+:$PYTHONPATH}" exec python "$root/benchmarks/device_check.py" "$@"
