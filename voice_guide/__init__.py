"""voice-guide: a hands-free, eyes-closed guide for couples' empathy exercises."""

__version__ = "0.1.0"
