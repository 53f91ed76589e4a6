"""Allow `python -m voice_guide`."""

from .cli import main

main()
