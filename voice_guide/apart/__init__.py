"""Partners apart: two devices play one script in step over a paired link."""
