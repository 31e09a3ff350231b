"""The stage packages import only earlier stages (docs/design.md, "Stages").

An ast walk over publisher/: every `import publisher.X` / `from publisher.X import`
(at any depth, lazy imports inside functions included) is checked against the
layer table below, and the package's import graph must have no cycle.
"""

from __future__ import annotations

import ast
import functools
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "publisher"
TOP = {
    "publisher",
    "publisher.errors",
    "publisher.addresses",
    "publisher.model",
    "publisher.codes",
    "publisher.errorcodes",
    "publisher.partners",
    "publisher.emails",
}

#: What each stage may import besides the shared top modules and itself.
ALLOWED: dict[str, tuple[str, ...]] = {
    "top": (),
    "lists": (),
    "compile": (),
    # SPF expansion and the refresh's rules: DNS through a Resolver, no git, no lists reader.
    "spf": (),
    "publish": ("publisher.lists", "publisher.compile", "publisher.spf"),
    "importer": ("publisher.lists", "publisher.compile"),
    # The server reads zones/ through the manifest reader and writes only its pid file.
    "server": ("publisher.compile", "publisher.publish.manifest", "publisher.publish.pidfile"),
    # The web face reads zones/ and the lists, and writes request branches through git: never publishes.
    "web": ("publisher.lists", "publisher.compile", "publisher.publish.manifest", "publisher.publish.vcs"),
    "cli": ("publisher",),
}

#: The only modules of publisher.publish the web process may reach, directly or through others.
WEB_REACHES_IN_PUBLISH = {"publisher.publish.manifest", "publisher.publish.manifest_fields", "publisher.publish.vcs"}


def web_may_reach(module: str) -> bool:
    return module in WEB_REACHES_IN_PUBLISH or module.startswith("publisher.publish.vcs.")


def stage_of(module: str) -> str:
    parts = module.split(".")
    if module == "publisher.__main__":
        return "cli"  # `python -m publisher` is the command line
    if len(parts) >= 2 and parts[1] in ALLOWED and (PACKAGE / parts[1]).is_dir():
        return parts[1]
    return "top"


def module_name(path: Path) -> str:
    rel = path.relative_to(PACKAGE.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports_of(path: Path) -> set[str]:
    """Every publisher module this file imports, resolved to dotted names."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.split(".")[0] == "publisher")
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "publisher":
            assert node.level == 0, f"{path}: use absolute imports"
            for alias in node.names:
                candidate = f"{node.module}.{alias.name}"
                is_module = (PACKAGE.parent / candidate.replace(".", "/")).with_suffix(".py").exists() or (
                    PACKAGE.parent / candidate.replace(".", "/")
                ).is_dir()
                found.add(candidate if is_module else node.module)
    return found


@functools.cache
def graph() -> dict[str, frozenset[str]]:
    return {module_name(p): frozenset(imports_of(p)) for p in sorted(PACKAGE.rglob("*.py"))}


def allowed(importer: str, imported: str) -> bool:
    stage = stage_of(importer)
    if imported in TOP or stage_of(imported) == stage and stage != "top":
        return True
    if stage == "top":
        return imported in TOP
    return any(imported == p or imported.startswith(p + ".") for p in ALLOWED[stage])


@pytest.mark.parametrize("module", sorted(graph()))
def test_stage_imports_only_earlier_stages(module: str) -> None:
    bad = sorted(i for i in graph()[module] if not allowed(module, i))
    assert not bad, f"{module} ({stage_of(module)}) imports a later or unrelated stage: {bad}"


def test_no_import_cycles() -> None:
    edges = {m: set(t) for m, t in graph().items()}
    # A package's __init__ re-exporting its own modules is not a cycle of meaning: leave those edges out.
    for module, targets in edges.items():
        edges[module] = {t for t in targets if t in edges and not (module == t.rpartition(".")[0])}
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(edges[node]):
            if state.get(nxt) == 1:
                cycle = stack[stack.index(nxt) :] + [nxt]
                pytest.fail("import cycle: " + " -> ".join(cycle))
            if nxt not in state:
                visit(nxt)
        stack.pop()
        state[node] = 2

    for node in sorted(edges):
        if node not in state:
            visit(node)


def reach(module: str) -> set[str]:
    """Every publisher module `module` imports, directly or through others."""
    seen: set[str] = set()
    todo = [module]
    while todo:
        for nxt in graph().get(todo.pop(), frozenset()):
            if nxt not in seen:
                seen.add(nxt)
                todo.append(nxt)
    return seen


def test_no_path_from_the_web_process_to_publish() -> None:
    """The web face reads what is published and writes request branches; publishing is the
    maintainers' `publisher requests accept` / `publish`, never the web process's."""
    web = [m for m in graph() if stage_of(m) == "web"]
    assert web, "publisher.web has no modules"
    for module in web:
        beyond = sorted(m for m in reach(module) if m.startswith("publisher.publish") and not web_may_reach(m))
        assert not beyond, f"{module} reaches {beyond}"
        assert not any(m.startswith(("publisher.server", "publisher.cli")) for m in reach(module)), module


def test_the_checker_sees_violations() -> None:
    assert not allowed("publisher.lists.bulk", "publisher.compile.zone")
    assert not allowed("publisher.compile.zone", "publisher.lists.config")
    assert not allowed("publisher.server.app", "publisher.publish.vcs")
    assert not allowed("publisher.model", "publisher.lists.tree")
    assert not allowed("publisher.web.app", "publisher.publish.release")
    assert not allowed("publisher.web.app", "publisher.server.wire")
    assert allowed("publisher.publish.build", "publisher.lists.load")
    assert allowed("publisher.cli.app", "publisher.server.options")
