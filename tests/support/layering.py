"""The import direction of architecture.md, checked from source.

`app -> (games, campaigns, guide_distribution) -> shop -> coupons -> points -> members ->
wechat -> org -> core`: a package may import its own modules and those of lower layers, never
a higher layer or a peer. `config` may be imported by anyone. Product code (everything but
`app.py`, `wsgi.py` and the sandbox itself) may not import the WeChat sandbox.

Python files are parsed with `ast` (every import statement, wherever it sits, plus
`importlib.import_module("...")` / `__import__("...")` with a literal name); Jinja templates
are tokenized with Jinja's own lexer (`extends`, `include`, `import`, `from` with literal
names). Packages and files are found by walking the tree, so a module may move freely.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import jinja2

# Lowest first. Names in one tuple are peers: they may not import each other. `config` is
# lowest (anyone may import it; it imports no product code); no product code imports tests
# or bench.
LAYERS: tuple[tuple[str, ...], ...] = (
    ("config",),
    ("core",),
    ("org",),
    ("wechat",),
    ("members",),
    ("points",),
    ("coupons",),
    ("shop",),
    ("games", "campaigns", "guide_distribution"),
    ("app",),
    ("tests", "bench"),
)
RANK = {name: rank for rank, names in enumerate(LAYERS) for name in names}
# Top-level modules that are not packages, and the layer they belong to (gunicorn.conf.py,
# the web server's settings, counts as "gunicorn").
TOP_LEVEL_MODULES = {"app": "app", "wsgi": "app", "gunicorn": "app", "config": "config"}
# Top-level directories that hold no product code: not checked.
NOT_PRODUCT = {"tests", "bench", "migrations", "scripts"}
SANDBOX = "wechat.sandbox"
TEMPLATE_TAGS = {"extends", "include", "import", "from"}


@dataclass(frozen=True, order=True)
class Violation:
    path: str
    line: int
    importer: str
    imported: str
    reason: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.importer} imports {self.imported} ({self.reason})"


def check(root: Path) -> list[Violation]:
    """Every import and template reference under ``root`` that goes against the layering."""
    return sorted(set(_python_violations(root)) | set(_template_violations(root)))


def unplaced(root: Path) -> list[str]:
    """Product packages, top-level modules and template folders missing from LAYERS."""
    names = {module.split(".")[0] for module in product_modules(root)}
    found = [f"{name} (python)" for name in names if _layer(name) is None]
    templates = root / "templates"
    if templates.is_dir():
        folders = {path.relative_to(templates).parts[0] for path in _template_files(templates)}
        found += [f"templates/{name}" for name in folders if _layer(name) is None]
    return sorted(found)


# --- Python ------------------------------------------------------------------------------


def product_modules(root: Path) -> dict[str, Path]:
    """Dotted module name -> file, for every product .py file under ``root``."""
    modules = {path.stem: path for path in root.glob("*.py")}
    for init in sorted(root.glob("*/__init__.py")):
        if init.parent.name in NOT_PRODUCT or init.parent.name.startswith("."):
            continue
        for path in init.parent.rglob("*.py"):
            parts = path.relative_to(root).with_suffix("").parts
            if parts[-1] == "__init__":
                parts = parts[:-1]
            modules[".".join(parts)] = path
    return modules


def imports_of(path: Path, module: str, known_modules: set[str]) -> Iterator[tuple[int, str]]:
    """(line, imported module) for every import in the file, at any depth."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_bytes(), filename=str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            base = _resolve(node.module or "", node.level, package)
            for alias in node.names:
                # `from wechat import sandbox` imports the module wechat.sandbox.
                submodule = f"{base}.{alias.name}"
                yield node.lineno, submodule if submodule in known_modules else base
        elif isinstance(node, ast.Call) and _is_dynamic_import(node.func) and node.args:
            name = node.args[0]
            if isinstance(name, ast.Constant) and isinstance(name.value, str):
                yield node.lineno, _resolve(name.value.lstrip("."), _dots(name.value), package)


def _python_violations(root: Path) -> Iterator[Violation]:
    modules = product_modules(root)
    known = set(modules)
    for module, path in modules.items():
        importer = _owner(module)
        for line, imported in imports_of(path, module, known):
            reason = _forbidden(importer, imported)
            if reason:
                yield Violation(_rel(path, root), line, importer, imported, reason)


def _is_dynamic_import(func: ast.expr) -> bool:
    if isinstance(func, ast.Name):
        return func.id in {"__import__", "import_module"}
    return isinstance(func, ast.Attribute) and func.attr == "import_module"


def _dots(name: str) -> int:
    return len(name) - len(name.lstrip("."))


def _resolve(name: str, level: int, package: str) -> str:
    """The absolute name of a (possibly relative) import made from ``package``."""
    if level == 0:
        return name
    parts = package.split(".") if package else []
    base = parts[: len(parts) - (level - 1)] if level - 1 <= len(parts) else []
    return ".".join([*base, name] if name else base)


# --- Templates ---------------------------------------------------------------------------


def template_references(path: Path) -> Iterator[tuple[int, str]]:
    """(line, template name) for every literal extends/include/import/from in a template."""
    tokens = iter(jinja2.Environment().lexer.tokenize(path.read_text(encoding="utf-8")))
    for token in tokens:
        if token.type != "block_begin":
            continue
        tag = next(tokens, None)
        if tag is None or tag.type != "name" or tag.value not in TEMPLATE_TAGS:
            continue
        # A name, or for include a list of names: `{% include ["a.html", "b.html"] %}`.
        for argument in tokens:
            if argument.type == "string":
                yield argument.lineno, argument.value
            elif argument.type not in {"lbracket", "comma"}:
                break


def _template_violations(root: Path) -> Iterator[Violation]:
    templates = root / "templates"
    if not templates.is_dir():
        return
    for path in _template_files(templates):
        importer = _template_owner(path.relative_to(templates).as_posix())
        for line, name in template_references(path):
            reason = _forbidden(importer, _template_owner(name))
            if reason:
                yield Violation(_rel(path, root), line, importer, name, reason)


def _template_files(templates: Path) -> Iterator[Path]:
    return (path for path in sorted(templates.rglob("*")) if path.is_file())


def _template_owner(name: str) -> str:
    """The module a template stands for: its first folder, or wechat.sandbox."""
    parts = name.split("/")
    return SANDBOX if parts[:2] == SANDBOX.split(".") else parts[0]


# --- The rule ----------------------------------------------------------------------------


def _layer(name: str) -> str | None:
    top = name.split(".")[0]
    return TOP_LEVEL_MODULES.get(top) or (top if top in RANK else None)


def _owner(module: str) -> str:
    return SANDBOX if _in_sandbox(module) else _layer(module) or module


def _in_sandbox(module: str) -> bool:
    return module == SANDBOX or module.startswith(SANDBOX + ".")


def _forbidden(importer: str, imported: str) -> str | None:
    """Why ``importer`` (a layer, or wechat.sandbox) may not import ``imported``, if so."""
    mine, theirs = _layer(importer), _layer(imported)
    if theirs is None or mine is None:
        return None  # not ours: stdlib, third party, or a template outside the layers
    if _in_sandbox(imported) and not _in_sandbox(importer) and mine != "app":
        return "sandbox"
    if theirs in {mine, "config"} or RANK[theirs] < RANK[mine]:
        return None
    return "peer layer" if RANK[theirs] == RANK[mine] else "higher layer"


def _rel(path: Path, root: Path) -> str:
    return path.relative_to(root).as_posix()
