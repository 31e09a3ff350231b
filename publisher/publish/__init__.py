"""Stage 3, publish: commit -> plan -> guard rails -> zones/ + history (see docs/design.md)."""
