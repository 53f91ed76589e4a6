"""Pure sound: levels, clips, cue tones, the timeline and mixer, WAV and encoded files, speech, rendering."""
