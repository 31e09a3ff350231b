"""Compile and encode: checked sources -> one immutable CompiledZone per zone -> snapshot, BIND, rbldnsd.

Entry: `compile_zone(zone_config, sources, as_of=...)` -> `CompiledZone`. Pure: no
clock, git, environment or files. See docs/design.md.
"""

from publisher.compile.compiler import compile_zone
from publisher.compile.zone import CompiledZone

__all__ = ["CompiledZone", "compile_zone"]
