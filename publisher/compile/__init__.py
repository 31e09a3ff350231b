"""Stage 2, compile and encode: sources -> CompiledZone -> snapshot, BIND, rbldnsd (see docs/design.md)."""
