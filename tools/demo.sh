#!/usr/bin/env bash
# `make demo`: play the timeout-breathing exercise, or render it to demo.wav where
# this machine has no sound output.
set -euo pipefail
cd "$(dirname "$0")/.."
vg=.venv/bin/voice-guide
echo "The exercise library:"
$vg list
echo
if .venv/bin/python -c "import sys; from voice_guide.live.audio import list_devices as found; \
sys.exit(0 if any(d.outputs for d in found()) else 1)" 2>/dev/null; then
  echo "Playing timeout-breathing (space pauses, n skips, q quits)."
  $vg run timeout-breathing
else
  echo "No sound output on this machine: rendering timeout-breathing to demo.wav instead."
  $vg render timeout-breathing -o demo.wav --chapters
  echo "Play demo.wav with any audio player; demo.vtt marks where each step starts."
fi
