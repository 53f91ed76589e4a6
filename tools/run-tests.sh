#!/usr/bin/env bash
# Run the whole check (ruff, mypy, pytest) against a private PulseAudio with two
# null sinks, and stop that PulseAudio again however the tests end.
set -uo pipefail
cd "$(dirname "$0")/.."
export VG_PULSE_DIR="${VG_PULSE_DIR:-$PWD/.pulse}"
eval "$(tools/pulse.sh env)"
tools/pulse.sh start || { echo "run-tests: could not start PulseAudio" >&2; exit 1; }
trap 'tools/pulse.sh stop' EXIT INT TERM
export VG_AUDIO_TESTS=1  # tells the suite the virtual devices are up
make --no-print-directory lint || exit 1
.venv/bin/pytest "$@"
