"""The shape of the code (ARCHITECTURE.md, "Boundaries that keep it easy to change"),
checked from the source itself:

- the hub never imports the interaction kinds (nor the room layer: it gets an
  interface), protocol and domain do no I/O, backends never import the hub, the load
  tool never imports the hub, and nothing imports in a circle;
- no file in server/ is over 600 lines, and every class says its one job in its
  docstring;
- the registry is the only place that names the kinds: outside each kind's own
  module (server/interactions/<kind>.py, clients/web/kinds/<kind>.js) and the registry,
  no code names a kind.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from server.interactions.registry import BUILT_IN, Registry

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("server", "protocol", "loadtest")
MAX_LINES = 600


def modules() -> dict[str, Path]:
    """Every Python module of the project's packages, by dotted name."""
    found = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            found[".".join(parts)] = path
    return found


MODULES = modules()


def imports_of(name: str, path: Path) -> set[str]:
    """The project modules ``name`` imports, anywhere in the file (under TYPE_CHECKING
    too: a circle there is still a circle in the design)."""
    tree = ast.parse(path.read_text("utf-8"))
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    out: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*parent, base] if base else parent)
            targets = [f"{base}.{alias.name}" for alias in node.names] + [base]
        else:
            continue
        for target in targets:
            while target and target not in MODULES:
                target = target.rpartition(".")[0]
            if target and target != name:
                out.add(target)
    return out


GRAPH = {name: imports_of(name, path) for name, path in MODULES.items()}


def external_imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text("utf-8"))
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
            out.add(node.module)
    return out


def under(prefix: str) -> Iterator[str]:
    return (name for name in MODULES if name == prefix or name.startswith(prefix + "."))


@pytest.mark.parametrize(
    ("who", "never"),
    [
        ("server.hub", ("server.interactions", "server.rooms")),
        ("server.backends", ("server.hub", "server.rooms", "server.api")),
        ("server.interactions", ("server.hub", "server.rooms", "server.backends", "server.api")),
        ("server.rooms", ("server.hub", "server.api")),
        ("protocol", ("server", "loadtest")),
        ("loadtest", ("server",)),
    ],
)
def test_never_imports(who, never):
    for name in under(who):
        bad = {t for t in GRAPH[name] if any(t == n or t.startswith(n + ".") for n in never)}
        assert not bad, f"{name} imports {sorted(bad)}"


# Modules that do I/O, or hand it to a library: none of them in protocol/ and the kinds.
IO_MODULES = (
    "asyncio",
    "socket",
    "ssl",
    "selectors",
    "subprocess",
    "threading",
    "multiprocessing",
    "importlib",
    "shutil",
    "tempfile",
    "sqlite3",
    "urllib",
    "http",
    "redis",
    "starlette",
    "uvicorn",
    "httpx",
    "prometheus_client",
)
IO_CALLS = {"open", "read_text", "read_bytes", "write_text", "write_bytes", "mkdir", "unlink"}


@pytest.mark.parametrize("package", ["protocol", "server.interactions"])
def test_protocol_and_domain_do_no_io(package):
    for name in under(package):
        path = MODULES[name]
        bad = {m for m in external_imports(path) if m.split(".")[0] in IO_MODULES}
        assert not bad, f"{name} imports {sorted(bad)}"
        calls = set()
        for node in ast.walk(ast.parse(path.read_text("utf-8"))):
            if isinstance(node, ast.Call):
                func = node.func
                called = func.id if isinstance(func, ast.Name) else getattr(func, "attr", "")
                if called in IO_CALLS:
                    calls.add(called)
        assert not calls, f"{name} calls {sorted(calls)}"


def test_no_import_circles():
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    circles: list[list[str]] = []

    def visit(node: str) -> None:  # Tarjan's strongly connected components
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(GRAPH[node]):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                item = stack.pop()
                on_stack.discard(item)
                component.append(item)
                if item == node:
                    break
            if len(component) > 1:
                circles.append(sorted(component))

    for node in sorted(GRAPH):
        if node not in index:
            visit(node)
    # A package's __init__ re-exporting its modules is not a circle of the design.
    circles = [c for c in circles if not _package_and_children(c)]
    assert not circles, f"import circles: {circles}"


def _package_and_children(component: list[str]) -> bool:
    shortest = min(component, key=len)
    return all(m == shortest or m.startswith(shortest + ".") for m in component) and all(
        shortest in GRAPH[m] or m == shortest for m in component
    )


def test_no_file_in_server_is_over_600_lines():
    long = {
        str(path.relative_to(ROOT)): n
        for path in (ROOT / "server").rglob("*.py")
        if (n := len(path.read_text("utf-8").splitlines())) > MAX_LINES
    }
    assert not long, f"over {MAX_LINES} lines: {long}"


def test_every_class_in_server_names_its_job():
    missing = []
    for path in sorted((ROOT / "server").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text("utf-8"))):
            if isinstance(node, ast.ClassDef):
                doc = ast.get_docstring(node)
                if not doc or not re.match(r"\S.{8,}?[.:]($|\s)", doc, re.S):
                    missing.append(f"{path.relative_to(ROOT)}:{node.lineno} {node.name}")
    assert not missing, "classes without a sentence saying their job:\n" + "\n".join(missing)


# --- the registry is the only place that names the kinds --------------------------------

KINDS = [kind.name for kind in BUILT_IN]
KIND_MODULES = {Path(__import__(type(k).__module__, fromlist=["_"]).__file__) for k in BUILT_IN}
REGISTRY_MODULE = ROOT / "server" / "interactions" / "registry.py"
# Where a kind's name is something else's name too; each says why.
ALLOWED: dict[str, set[str]] = {
    # the venue wall *page* (/wall/{room}), which shows every kind, not the wall kind
    "server/pages.py": {"wall"},
    "server/api/node.py": {"wall"},
    "server/demo.py": {"wall"},
    # example messages of the test vectors (data): a check-in command and its state
    "protocol/gen_vectors.py": {"checkin"},
    # the JS client's documented helper for the protocol's op "checkin" (PROTOCOL.md)
    "clients/js/hudong.js": {"checkin"},
}


def python_literals(path: Path) -> set[str]:
    tree = ast.parse(path.read_text("utf-8"))
    docstrings = {
        id(node.body[0].value)
        for node in ast.walk(tree)
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))
        and node.body
        and isinstance(node.body[0], ast.Expr)
        and isinstance(node.body[0].value, ast.Constant)
    }
    return {
        node.value
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant) and isinstance(node.value, str)
        if id(node) not in docstrings
    }


JS_STRING = re.compile(r"""(["'`])((?:\\.|(?!\1).)*)\1""")
JS_COMMENT = re.compile(r"//[^\n]*|/\*.*?\*/", re.S)


def script_literals(path: Path) -> set[str]:
    text = JS_COMMENT.sub("", path.read_text("utf-8"))
    if path.suffix == ".html":
        text = re.sub(r"<!--.*?-->", "", text, flags=re.S)
        return set(re.findall(r"""=\s*"([^"]*)\"""", text)) | {
            m[1] for m in JS_STRING.findall(text)
        }
    return {m[1] for m in JS_STRING.findall(text)}


def code_files() -> Iterator[Path]:
    for path in sorted((ROOT / "server").rglob("*.py")):
        if path not in KIND_MODULES and path != REGISTRY_MODULE:
            yield path
    yield from sorted((ROOT / "protocol").rglob("*.py"))
    for pattern in ("*.js", "*.html"):
        yield from sorted((ROOT / "clients" / "web").glob(pattern))
    yield from sorted((ROOT / "clients" / "js").glob("*.js"))


def test_only_the_registry_and_each_kind_s_own_modules_name_the_kinds():
    found = []
    for path in code_files():
        rel = str(path.relative_to(ROOT))
        literals = python_literals(path) if path.suffix == ".py" else script_literals(path)
        named = (literals & set(KINDS)) - ALLOWED.get(rel, set())
        if named:
            found.append(f"{rel}: {sorted(named)}")
    assert not found, "kinds named outside their modules:\n" + "\n".join(found)


def test_the_kind_name_check_finds_a_kind_named_outside_its_module(tmp_path):
    """The check above can fail: a page or a server module that branches on a kind."""
    page = tmp_path / "page.js"
    page.write_text('if (view.kind === "poll") draw(view); // "quiz" in a comment\n')
    assert script_literals(page) & set(KINDS) == {"poll"}
    module = tmp_path / "module.py"
    module.write_text('"""About the quiz."""\nif d.kind == "codesign":\n    pass\n')
    assert python_literals(module) & set(KINDS) == {"codesign"}


def test_every_kind_module_exports_its_kind_and_the_registry_lists_it():
    registry = Registry()
    assert [k.name for k in registry] == KINDS
    for path in (ROOT / "server" / "interactions").glob("*.py"):
        if path.stem in ("__init__", "base", "kind", "registry"):
            continue
        module = __import__(f"server.interactions.{path.stem}", fromlist=["KIND"])
        assert module.KIND in BUILT_IN, f"{path.name} exports no registered KIND"
