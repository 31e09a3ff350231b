"""Migration: an rbldnsd data file -> list files (see docs/design.md)."""
