#!/usr/bin/env python3
"""Checks the code's shape (run by scripts/check-ops.sh; standard library only).

1. The modules of `queen/src` import each other down the layers of docs/runtime.md ("Code
   layers of `queen/src`") and never in a circle: every `crate::<module>` path a module's files
   name is read, and an import into a higher layer, or any circle, is an error.
2. No Rust file of the crates is over 600 lines, except the ones listed below with the reason.
"""
import pathlib
import re
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
QUEEN = ROOT / "queen/src"

# Lower numbers are lower layers; a module may import its own layer or lower ones.
LAYERS = {
    "error": 0,
    "names": 0,
    "health": 0,
    "commands": 0,
    "keys": 0,
    "record": 0,
    "schedule": 0,
    "classify": 0,
    "traces": 0,
    "delivery": 0,
    "retention": 0,
    "queen": 1,
    "host": 1,
    "supervisor": 1,
    "api": 2,
    "metrics": 2,
    "swarm": 3,
}

MAX_LINES = 600
# Files allowed past MAX_LINES, and why. Shrink this list; never grow it without a reason.
LONG_FILES = {
    "agents/src/keyword/lexicon.rs": "a data table: the cue phrases",
}
CRATE_DIRS = ["shared", "agents", "memory-coordinator", "queen", "tests", "sentence-encoder"]


def module_imports():
    graph = {}
    for path in QUEEN.iterdir():
        name = path.stem if path.is_file() else path.name
        if name in ("lib", "main", "cli") or not (path.suffix == ".rs" or path.is_dir()):
            continue
        files = [path] if path.is_file() else sorted(path.rglob("*.rs"))
        text = "\n".join(f.read_text() for f in files)
        refs = set(re.findall(r"\bcrate::(\w+)", text))
        for group in re.findall(r"\bcrate::\{([^}]*)\}", text):
            refs |= {part.strip().split("::")[0] for part in group.split(",") if part.strip()}
        refs.discard(name)
        graph[name] = sorted(r for r in refs if r in LAYERS or (QUEEN / f"{r}.rs").exists() or (QUEEN / r).is_dir())
    return graph


def circles(graph):
    found, state, stack = [], {}, []

    def visit(node):
        state[node] = "open"
        stack.append(node)
        for other in graph.get(node, []):
            if state.get(other) == "open":
                found.append(stack[stack.index(other):] + [other])
            elif other not in state:
                visit(other)
        stack.pop()
        state[node] = "done"

    for node in sorted(graph):
        if node not in state:
            visit(node)
    return found


def main():
    problems = []
    graph = module_imports()
    for module in sorted(graph):
        if module not in LAYERS:
            problems.append(f"queen/src/{module}: not in a layer; add it to LAYERS and docs/runtime.md")
            continue
        for used in graph[module]:
            if used in LAYERS and LAYERS[used] > LAYERS[module]:
                problems.append(f"queen/src/{module} imports {used}, a higher layer")
    for circle in circles(graph):
        problems.append("import circle: " + " -> ".join(circle))
    for folder in CRATE_DIRS:
        for path in sorted((ROOT / folder).rglob("*.rs")):
            relative = path.relative_to(ROOT).as_posix()
            if "/target/" in f"/{relative}":
                continue
            lines = path.read_text().count("\n")
            if lines > MAX_LINES and relative not in LONG_FILES:
                problems.append(f"{relative}: {lines} lines (at most {MAX_LINES}; split it)")
    for relative in LONG_FILES:
        path = ROOT / relative
        if path.exists() and path.read_text().count("\n") <= MAX_LINES:
            problems.append(f"{relative} is no longer long: take it off LONG_FILES")
    if problems:
        for problem in problems:
            print(f"layers: {problem}", file=sys.stderr)
        sys.exit(1)
    edges = sum(len(v) for v in graph.values())
    print(f"layers: queen/src has {len(graph)} modules and {edges} imports between them, all downward, no circle; "
          f"no file over {MAX_LINES} lines but the {len(LONG_FILES)} listed")


if __name__ == "__main__":
    main()
