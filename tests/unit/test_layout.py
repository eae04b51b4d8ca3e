"""The house's layout: no import circle in dashboard_lib (lazy imports included), Streamlit only in state.py and ui.py,
and no code outside methods/ that branches on a method's id or keeps a list of ids (a method declares what is true of
it on its class)."""
from __future__ import annotations

import ast
import importlib
import pkgutil
from pathlib import Path

import dashboard_lib
from dashboard_lib.methods import REGISTRY

ROOT = Path(dashboard_lib.__file__).resolve().parents[1]
PACKAGE = "dashboard_lib"
STREAMLIT_MODULES = {"dashboard_lib.state", "dashboard_lib.ui"}
# A method id may stand as data where the code does not branch on it: (file relative to the repository, line text
# fragment) -> why. Keep it minimal.
ID_ALLOWED: dict[tuple[str, str], str] = {}


def _modules() -> dict[str, Path]:
    """Every module of dashboard_lib, imported (so the test fails on one that does not import; __main__ runs the CLI,
    so it is only read), with its file."""
    found = {PACKAGE: Path(dashboard_lib.__file__)}
    for info in pkgutil.walk_packages(dashboard_lib.__path__, prefix=f"{PACKAGE}."):
        if info.name.endswith(".__main__"):
            found[info.name] = Path(info.module_finder.find_spec(info.name.rpartition(".")[2]).origin)
            continue
        found[info.name] = Path(importlib.import_module(info.name).__file__)
    return found


def _resolve(module: str, path: Path, node: ast.ImportFrom) -> str:
    """The absolute name of what `from ... import` names as its module (relative levels resolved)."""
    if not node.level:
        return node.module or ""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    base = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
    return f"{base}.{node.module}" if node.module else base


def _imports(module: str, path: Path, known: set[str]) -> set[str]:
    """The modules of dashboard_lib this module imports anywhere in its body (top level or inside functions): an
    imported name that is itself a module counts as that module, not as its package."""
    out = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            out.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            target = _resolve(module, path, node)
            for alias in node.names:
                out.add(f"{target}.{alias.name}" if f"{target}.{alias.name}" in known else target)
    return {name for name in out if name in known and name != module}


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import circle in graph, as the list of modules around it (the first repeated at the end), or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return path[path.index(nxt):] + [nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        path.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (found := visit(node)):
            return found
    return None


def test_the_import_graph_of_dashboard_lib_has_no_circle():
    modules = _modules()
    graph = {name: _imports(name, path, set(modules)) for name, path in modules.items()}
    assert "dashboard_lib.sweeps.runner" in graph  # the walk found the subpackages
    cycle = _cycle(graph)
    assert cycle is None, "import circle: " + " -> ".join(cycle)


def test_cycle_finder_finds_a_circle_through_a_lazy_import(tmp_path):
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}
    assert _cycle(graph) == ["a", "b", "c", "a"]
    source = tmp_path / "m.py"
    source.write_text("def f():\n    from .other import thing\n")
    assert _imports("dashboard_lib.m", source, {"dashboard_lib.other"}) == {"dashboard_lib.other"}


def test_only_state_and_ui_import_streamlit():
    importing = set()
    for name, path in _modules().items():
        for node in ast.walk(ast.parse(path.read_text())):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                     else [node.module or ""] if isinstance(node, ast.ImportFrom) and not node.level else [])
            if any(n == "streamlit" or n.startswith("streamlit.") for n in names):
                importing.add(name)
    assert importing == STREAMLIT_MODULES


def _id_uses(tree: ast.AST, ids: set[str]) -> list[tuple[int, str]]:
    """(line, what) for each comparison or membership test against a method id literal, and each tuple, list, set or
    dict (keys) holding one."""
    def is_id(node) -> bool:
        return isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value in ids

    # A module's __all__ lists its public names, some of which may read like an id (classic.fair_assignment, the
    # function behind the fair_assignment method): names, not ids, so not a list of methods.
    exports = {id(n) for node in ast.walk(tree) if isinstance(node, ast.Assign)
               and any(isinstance(t, ast.Name) and t.id == "__all__" for t in node.targets) for n in ast.walk(node.value)}
    found = []
    for node in ast.walk(tree):
        if id(node) in exports:
            continue
        if isinstance(node, ast.Compare) and any(is_id(n) for n in (node.left, *node.comparators)):
            found.append((node.lineno, "compares with a method id"))
        elif isinstance(node, (ast.Tuple, ast.List, ast.Set)) and any(is_id(n) for n in node.elts):
            found.append((node.lineno, "lists method ids"))
        elif isinstance(node, ast.Dict) and any(is_id(n) for n in node.keys if n is not None):
            found.append((node.lineno, "is keyed by method ids"))
        elif isinstance(node, ast.MatchValue) and is_id(node.value):
            found.append((node.lineno, "matches a method id"))
    return sorted(found)


def _code_outside_methods() -> list[Path]:
    files = [ROOT / "app.py", *sorted((ROOT / "pages").glob("*.py")), *sorted((ROOT / PACKAGE).rglob("*.py"))]
    return [f for f in files if (ROOT / PACKAGE / "methods") not in f.parents]


def test_no_code_outside_methods_branches_on_a_method_id_or_lists_ids():
    ids = set(REGISTRY)
    problems, allowed_seen = [], set()
    for path in _code_outside_methods():
        relative = path.relative_to(ROOT).as_posix()
        lines = path.read_text().splitlines()
        for line, what in _id_uses(ast.parse(path.read_text()), ids):
            key = next((k for k in ID_ALLOWED if k[0] == relative and k[1] in lines[line - 1]), None)
            if key is None:
                problems.append(f"{relative}:{line}: {what}: {lines[line - 1].strip()}")
            else:
                allowed_seen.add(key)
    assert not problems, "declare it on the method's class instead:\n" + "\n".join(problems)
    assert allowed_seen == set(ID_ALLOWED), f"allow-list entries that match nothing: {set(ID_ALLOWED) - allowed_seen}"


def test_the_id_scan_finds_each_kind_of_use():
    tree = ast.parse('if run.method == "fcmi": pass\n'
                     'x = run.method in ("erm", "clusterfix")\n'
                     'y = {"dfc": 1}\n'
                     'z = ["umap", "pca"]\n'
                     'w = f(method="fcmi")\n')
    assert _id_uses(tree, {"fcmi", "erm", "clusterfix", "dfc"}) == [
        (1, "compares with a method id"), (2, "lists method ids"), (3, "is keyed by method ids")]


def test_no_two_classes_of_dashboard_lib_share_a_name():
    seen: dict[str, list[str]] = {}
    for name, path in _modules().items():
        for node in ast.parse(path.read_text()).body:
            if isinstance(node, ast.ClassDef):
                seen.setdefault(node.name, []).append(name)
    assert not {k: v for k, v in seen.items() if len(v) > 1}
