"""Load and validate: the lists folder (zones.yaml and list files) -> checked sources.

Entry: `load_lists(tree, as_of=...)` -> `Loaded` (config, sources per zone, every
problem located); `require_clean` refuses one with errors. See docs/design.md.
"""

from publisher.lists.load import Loaded, load_lists, require_clean

__all__ = ["Loaded", "load_lists", "require_clean"]
