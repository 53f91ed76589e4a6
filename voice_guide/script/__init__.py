"""Exercise scripts: the YAML format, loaded with line numbers and expanded into a flat plan.

Two stages, both pure:
- `load(path)` reads a file into a frozen `Script` (steps as written, repeats nested,
  placeholders still in the text) or raises `ScriptError` naming the file and line.
- `expand(script, names, overrides)` fills in partner names and `--set` values, unrolls
  `repeat`/`swap` and returns the flat steps the timeline places.
The format itself is documented in docs/SCRIPT_FORMAT.md.
"""

from voice_guide.script.expand import expand, parse_overrides, step_details, step_kind, step_label
from voice_guide.script.model import Breathe, Chime, Listen, Names, Pause, Say, Script, Step
from voice_guide.script.parser import load, parse

__all__ = [
    "Breathe",
    "Chime",
    "Listen",
    "Names",
    "Pause",
    "Say",
    "Script",
    "Step",
    "expand",
    "load",
    "parse",
    "parse_overrides",
    "step_details",
    "step_kind",
    "step_label",
]
