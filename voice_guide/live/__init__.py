"""A session in real time: the frame-clock controller, audio devices, voice detection, turns, panel and keys."""
