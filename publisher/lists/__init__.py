"""Stage 1, load and validate: the lists folder -> checked sources (see docs/design.md)."""
