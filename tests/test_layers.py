"""The package's shape: imports only point down, and each registered name has one class.

The import graph is read from the source (every `import` statement, inside
functions too), so a lazy import that closes a loop fails here as surely as a
top-level one.
"""

import ast
import pathlib

PACKAGE = pathlib.Path(__file__).resolve().parent.parent / "kerassl"


def module_name(path):
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def module_files():
    return {module_name(path): path for path in sorted(PACKAGE.rglob("*.py"))}


def resolve(modules, name):
    """The kerassl module an imported name lives in (a module or its package)."""
    while name and name not in modules:
        name = name.rpartition(".")[0]
    return name or None


def imported_modules(modules, name, path):
    tree = ast.parse(path.read_text(), filename=str(path))
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            # `from kerassl import viz` imports the module kerassl.viz.
            targets = [f"{base}.{alias.name}" for alias in node.names] + [base]
        else:
            continue
        for target in targets:
            if target.split(".")[0] != "kerassl":
                continue
            resolved = resolve(modules, target)
            if resolved and resolved != name:
                found.add(resolved)
    return found


def import_graph():
    modules = module_files()
    graph = {name: imported_modules(modules, name, path) for name, path in modules.items()}
    # A package's __init__ re-exporting its own submodules is not a layer
    # pointing up: importing kerassl.backbones.vit runs kerassl.backbones first
    # anyway. Edges from a submodule up to its own package (or any ancestor) are
    # kept, so `kerassl.backbones.vit -> kerassl.backbones` still counts.
    for name in graph:
        graph[name] = {t for t in graph[name] if not t.startswith(name + ".")}
    return graph


def find_cycles(graph):
    """Strongly connected components with more than one module (Tarjan)."""
    index, low, stack, on_stack, components = {}, {}, [], set(), []

    def visit(node):
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in sorted(graph.get(node, ())):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                components.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return components


def describe(graph, component):
    members = set(component)
    return "; ".join(
        f"{source} -> {target}"
        for source in component
        for target in sorted(graph[source] & members)
    )


def test_no_import_cycles_between_modules():
    graph = import_graph()
    # The top-level package re-exports everything; only its submodules must
    # form a graph without loops.
    graph = {k: {t for t in v if t != "kerassl"} for k, v in graph.items() if k != "kerassl"}
    cycles = find_cycles(graph)
    assert not cycles, "import cycles:\n" + "\n".join(describe(graph, c) for c in cycles)


# What the lower layers must never import, lazily or not (STYLE.md "layout").
FORBIDDEN = {
    "kerassl.images": ("kerassl.",),
    "kerassl.losses": ("kerassl.heads", "kerassl.augment", "kerassl.backbones", "kerassl.methods",
                       "kerassl.evaluate", "kerassl.zoo", "kerassl.viz", "kerassl.cli"),
    "kerassl.heads": ("kerassl.augment", "kerassl.backbones", "kerassl.methods",
                      "kerassl.evaluate", "kerassl.zoo", "kerassl.viz", "kerassl.cli"),
    "kerassl.augment": ("kerassl.backbones", "kerassl.methods", "kerassl.evaluate",
                        "kerassl.zoo", "kerassl.viz", "kerassl.cli"),
    "kerassl.captions": ("kerassl.methods", "kerassl.evaluate", "kerassl.zoo", "kerassl.viz",
                         "kerassl.cli"),
    "kerassl.teacher": ("kerassl.augment", "kerassl.backbones", "kerassl.methods",
                        "kerassl.evaluate", "kerassl.zoo", "kerassl.viz", "kerassl.cli"),
    "kerassl.backbones": ("kerassl.methods", "kerassl.evaluate", "kerassl.zoo", "kerassl.viz",
                          "kerassl.cli"),
    "kerassl.methods": ("kerassl.evaluate", "kerassl.finetune", "kerassl.zoo", "kerassl.viz",
                        "kerassl.cli", "kerassl.demo"),
    "kerassl.evaluate": ("kerassl.zoo", "kerassl.viz", "kerassl.cli", "kerassl.demo"),
    "kerassl.zoo": ("kerassl.viz", "kerassl.demo"),
}


def test_lower_layers_do_not_import_upper_ones():
    graph = import_graph()
    problems = []
    for name, targets in sorted(graph.items()):
        for layer, forbidden in FORBIDDEN.items():
            if name != layer and not name.startswith(layer + "."):
                continue
            for target in sorted(targets):
                if target != "kerassl.registry" and any(
                    target == f or target.startswith(f.rstrip(".") + ".") or
                    (f.endswith(".") and target.startswith(f)) for f in forbidden
                ):
                    problems.append(f"{name} -> {target}")
    assert not problems, "imports pointing up:\n" + "\n".join(problems)


def test_one_fit_in_the_methods():
    """A method is `call` and `compute_loss`; `SSLMethod.fit` is the only `fit`
    (hooks: `before_fit`, `prepared_data`)."""
    overrides = []
    for path in sorted((PACKAGE / "methods").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if isinstance(node, ast.ClassDef):
                overrides += [
                    f"{path.name}:{node.name}.fit" for item in node.body
                    if isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef)) and item.name == "fit"
                ]
    assert overrides == ["base.py:SSLMethod.fit"], overrides
