#!/usr/bin/env bash
# Start or stop a private PulseAudio server with two null sinks for the tests:
#   vg_out  - where the program plays (record it from vg_out.monitor)
#   vg_mic  - a virtual microphone: play into it, the program records vg_mic.monitor
# Usage: tools/pulse.sh start|stop|env   (env prints the exports clients need)
set -euo pipefail
runtime="${VG_PULSE_DIR:-${TMPDIR:-/tmp}/voice-guide-pulse-$(id -u)}"
export PULSE_RUNTIME_PATH="$runtime"
export PULSE_SERVER="unix:$runtime/native"

case "${1:-}" in
  env)
    echo "export PULSE_RUNTIME_PATH='$runtime' PULSE_SERVER='unix:$runtime/native'"
    ;;
  start)
    mkdir -p "$runtime"
    if pactl info >/dev/null 2>&1; then
      echo "pulse.sh: PulseAudio already running at $runtime" >&2
    else
      # As root PulseAudio warns that it should run as a user; it still runs.
      pulseaudio -D -n --exit-idle-time=-1 --disallow-exit \
        --load=module-native-protocol-unix \
        --load="module-null-sink sink_name=vg_out rate=48000 sink_properties=device.description=vg_out" \
        --load="module-null-sink sink_name=vg_mic rate=48000 sink_properties=device.description=vg_mic" \
        --log-target=file:"$runtime/pulse.log" 2>/dev/null
      for _ in $(seq 50); do pactl info >/dev/null 2>&1 && break; sleep 0.1; done
    fi
    pactl set-default-sink vg_out
    pactl set-default-source vg_mic.monitor
    echo "pulse.sh: PulseAudio up (pid $(cat "$runtime/pid" 2>/dev/null || echo '?'))" >&2
    ;;
  stop)
    if [ -f "$runtime/pid" ]; then
      pid=$(cat "$runtime/pid")
      kill "$pid" 2>/dev/null || true
      for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
      kill -9 "$pid" 2>/dev/null || true
      rm -f "$runtime/pid"
      echo "pulse.sh: PulseAudio $pid stopped" >&2
    fi
    ;;
  *)
    echo "usage: tools/pulse.sh start|stop|env" >&2; exit 2 ;;
esac
