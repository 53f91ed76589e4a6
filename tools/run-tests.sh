#!/usr/bin/env bash
# Run the whole check (ruff, mypy, pytest) against a private PulseAudio with two
# null sinks, and stop that PulseAudio again however the tests end.
#
# With no arguments the suite runs as two pytest processes side by side: the tests that
# use a PulseAudio server (marked sound_server by tests/conftest.py; they play in real
# time and share the null sinks) one after another, and the offline tests beside them at
# the lowest priority, so the live sessions get the CPU they would have on a quiet
# machine. Arguments are passed to one plain pytest run instead.
set -uo pipefail
cd "$(dirname "$0")/.."
export VG_PULSE_DIR="${VG_PULSE_DIR:-$PWD/.pulse}"
eval "$(tools/pulse.sh env)"
tools/pulse.sh start || { echo "run-tests: could not start PulseAudio" >&2; exit 1; }
offline=""
trap '[ -n "$offline" ] && kill "$offline" 2>/dev/null; tools/pulse.sh stop' EXIT INT TERM
export VG_AUDIO_TESTS=1  # tells the suite the virtual devices are up
make --no-print-directory lint || exit 1
if [ $# -gt 0 ]; then
  .venv/bin/pytest "$@"
  exit $?
fi
offline_log=$(mktemp)
nice -n 19 .venv/bin/pytest -p no:cacheprovider -m "not sound_server" >"$offline_log" 2>&1 &
offline=$!
echo "run-tests: offline tests running beside these at nice 19 (their report follows)"
.venv/bin/pytest -m sound_server
live=$?
wait "$offline"
rest=$?
offline=""
cat "$offline_log"
rm -f "$offline_log"
echo "run-tests: sound-server tests exit $live, offline tests exit $rest"
[ "$live" -eq 0 ] && [ "$rest" -eq 0 ]
