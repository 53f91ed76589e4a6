"""Speech: the Speaker protocol, the text-to-speech engines and the on-disk clip cache."""
