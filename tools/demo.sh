#!/usr/bin/env bash
# `make demo`: show what voice-guide does on this machine.
set -euo pipefail
cd "$(dirname "$0")/.."
vg=.venv/bin/voice-guide
echo "The exercise library:"
$vg list
echo
echo "One exercise, step by step:"
$vg show timeout-breathing
