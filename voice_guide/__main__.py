"""Allow `python -m voice_guide`."""

from voice_guide.cli import main

main()
