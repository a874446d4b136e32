"""The package's shape: module-level imports inside hiera_video form no cycle (a cycle would need a
function-local import to hold it together), no function-local import of a hiera_video module stands in
for a module-level one, and the tasks are named in one table."""

import ast
from pathlib import Path

import hiera_video

PACKAGE = Path(hiera_video.__file__).parent
# Function-local imports of hiera_video modules that are there for a reason other than a cycle.
LAZY = {
    # `hiera-video --help` and the dispatch to one command must not import torch or every command
    "cli.py": "a command's module is imported when that command runs",
    # `import hiera_video` stays light: the engine (accelerate, the DataLoader stack) loads on first use
    "api.py": "the engine loads when train/predict/embed is first called",
}


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def _resolve(module: str, path: Path, node: ast.ImportFrom) -> str:
    package = module.split(".") if path.name == "__init__.py" else module.split(".")[:-1]
    base = package[: len(package) - node.level + 1]
    return ".".join(base + ([node.module] if node.module else []))


def _imports(module: str, path: Path, local: bool, known: dict | None = None) -> list[tuple[int, str]]:
    """(line, imported hiera_video module) of the module-level imports (local=False) or of the imports
    inside functions (local=True). `if TYPE_CHECKING:` blocks do not run and are skipped."""
    tree = ast.parse(path.read_text())
    known = _modules() if known is None else known
    found = []

    def visit(nodes, in_function):
        for node in nodes:
            if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
                continue
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                visit(node.body, True)
                continue
            if isinstance(node, ast.ClassDef):
                visit(node.body, in_function)
                continue
            if isinstance(node, (ast.Import, ast.ImportFrom)) and in_function == local:
                if isinstance(node, ast.Import):
                    targets = [a.name for a in node.names]
                else:
                    base = _resolve(module, path, node) if node.level else node.module
                    targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in known else base for a in node.names]
                for t in targets:
                    if t == "hiera_video" or t.startswith("hiera_video."):
                        # Importing a.b.c runs the packages a and a.b first, unless the importer is
                        # inside them (then they are already being imported).
                        parts = t.split(".")
                        found.extend((node.lineno, ".".join(parts[:i])) for i in range(2, len(parts) + 1)
                                     if ".".join(parts[:i]) in known and (i == len(parts) or not (
                                         module + ".").startswith(".".join(parts[:i]) + ".")))
            for field in ("body", "orelse", "finalbody", "handlers"):
                if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                    visit(getattr(node, field, []) or [], in_function)

    visit(tree.body, False)
    return found


def test_module_level_imports_have_no_cycle():
    modules = _modules()
    graph = {m: {t for _, t in _imports(m, p, False, modules) if t != m} for m, p in modules.items()}
    # Tarjan's strongly connected components: any with more than one module is a cycle.
    index, low, stack, on, cycles, counter = {}, {}, [], set(), [], [0]

    def strong(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                strong(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for v in graph:
        if v not in index:
            strong(v)
    assert not cycles, f"import cycles: {cycles}"


def test_no_function_local_import_of_the_package_outside_the_lazy_entry_points():
    modules = _modules()
    offenders = [f"{p.relative_to(PACKAGE)}:{line} imports {target}"
                 for m, p in modules.items() if str(p.relative_to(PACKAGE)) not in LAZY
                 for line, target in _imports(m, p, True, modules)]
    assert not offenders, "\n".join(offenders)


def test_the_cycle_check_sees_a_cycle(tmp_path, monkeypatch):
    """The walker itself: two modules importing each other at module level are reported."""
    pkg = tmp_path / "hiera_video"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "a.py").write_text("from . import b\n")
    (pkg / "b.py").write_text("from .a import x\n")
    monkeypatch.setattr(__import__(__name__), "PACKAGE", pkg)
    import pytest
    with pytest.raises(AssertionError, match=r"hiera_video.a', 'hiera_video.b"):
        test_module_level_imports_have_no_cycle()


def test_only_the_task_table_names_the_tasks():
    """Outside tasks/, no module compares a config's task with a name: the task object decides."""
    offenders = [f"{p.relative_to(PACKAGE)}:{n}" for p in PACKAGE.rglob("*.py") if "tasks" not in p.parts
                 for n, line in enumerate(p.read_text().splitlines(), 1)
                 if ".task ==" in line or ".task !=" in line or ".task in (" in line]
    assert not offenders, offenders


def test_the_readme_module_map_matches_the_tree():
    """Every module of the package is named in the README's map under its folder, and every name there exists."""
    import re
    readme = (PACKAGE.parent / "README.md").read_text()
    block = readme.split("## Development", 1)[1].split("```", 2)[1]
    named: dict[str, set[str]] = {}
    folder = None
    for line in block.splitlines():
        if line.startswith("hiera_video/"):
            folder = line.split()[0].rstrip("/")
            named.setdefault(folder, set())
        elif not line.startswith(" "):
            folder = None
        if folder is not None and folder not in ("hiera_video/commands", "hiera_video/configs", "hiera_video/data_lists"):
            named[folder] |= set(re.findall(r"\b(\w+\.py)\b", line.split(None, 1)[1] if line.startswith("h") else line))
    for folder, names in named.items():
        if folder in ("hiera_video/commands", "hiera_video/configs", "hiera_video/data_lists"):
            continue
        actual = {p.name for p in (PACKAGE.parent / folder).glob("*.py") if p.name != "__init__.py"}
        assert names - {"__init__.py"} == actual, (folder, "missing:", actual - names, "stale:", names - actual)
    folders = {str(p.parent.relative_to(PACKAGE.parent)) for p in PACKAGE.rglob("*.py")}
    assert folders <= set(named), folders - set(named)


def test_old_import_paths_keep_working():
    """Paths users may have in notebooks (the issue names these two) still lead to the same objects."""
    from hiera_video.engine.train import Trainer, train
    from hiera_video.models import create_model
    from hiera_video.models.factory import create_model as factory_create_model
    assert create_model is factory_create_model is hiera_video.create_model
    assert train.__module__ == Trainer.__module__ == "hiera_video.engine.train"


def test_every_folder_of_the_package_is_a_regular_package():
    """A folder without __init__.py would be a namespace package: no docstring, and easy to lose in packaging."""
    folders = {p.parent for p in PACKAGE.rglob("*.py")}
    assert all((f / "__init__.py").exists() for f in folders), sorted(str(f) for f in folders if not (f / "__init__.py").exists())
