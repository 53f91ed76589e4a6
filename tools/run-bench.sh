#!/usr/bin/env bash
# Run every benchmark (figures for the README's performance table) against the
# private PulseAudio that the live benchmark needs; stop it again afterwards.
set -uo pipefail
cd "$(dirname "$0")/.."
export VG_PULSE_DIR="${VG_PULSE_DIR:-$PWD/.pulse}"
eval "$(tools/pulse.sh env)"
tools/pulse.sh start || exit 1
trap 'tools/pulse.sh stop' EXIT INT TERM
.venv/bin/python -m bench
