"""The house grain, measured: no function over 45 lines and no module over 350 in the product
(`app.py`, `chalicelib/`) and its tools (`devstack/`, `bench/`), so a reader can hold any one of
them in their head. Data tables (rows of facts, no code) may grow past the module limit; they are
named here and in docs/architecture.md ("Data tables"), and must stay data."""

from __future__ import annotations

import ast
import fnmatch
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
ROOTS = ("app.py", "chalicelib", "devstack", "bench")
MAX_FUNCTION_LINES = 45
MAX_MODULE_LINES = 350

# Modules that are data only (imports and assignments): exempt from the module limit.
DATA_TABLES = (
    "chalicelib/domain/catalog/claude_4.py",
    "chalicelib/domain/catalog/claude_5.py",
)


def sources() -> list[Path]:
    found: list[Path] = []
    for root in ROOTS:
        path = ROOT / root
        found += [path] if path.is_file() else sorted(path.rglob("*.py"))
    return found


def offences(paths: list[Path] | None = None, root: Path = ROOT) -> set[tuple[str, str]]:
    """(module, function or "<module>") for every function and module over its limit."""
    found = set()
    for path in sources() if paths is None else paths:
        source = path.read_text()
        name = path.relative_to(root).as_posix()
        if source.count("\n") > MAX_MODULE_LINES and name not in DATA_TABLES:
            found.add((name, "<module>"))
        for node in ast.walk(ast.parse(source)):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                assert node.end_lineno is not None
                if node.end_lineno - node.lineno + 1 > MAX_FUNCTION_LINES:
                    found.add((name, node.name))
    return found


def test_no_function_over_45_lines_and_no_module_over_350() -> None:
    over = sorted(offences())
    assert over == [], (
        "split these into named steps (a data table goes in DATA_TABLES and "
        f"docs/architecture.md): {over}"
    )


def test_the_data_tables_are_data_and_documented() -> None:
    architecture = (ROOT / "docs" / "architecture.md").read_text()
    for name in DATA_TABLES:
        tree = ast.parse((ROOT / name).read_text())
        code = [
            type(node).__name__
            for node in tree.body
            if not isinstance(node, ast.Import | ast.ImportFrom | ast.Assign | ast.AnnAssign)
            and not (isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant))
        ]
        assert code == [], f"{name} holds code ({code}), not only data"
        assert f"`{name}`" in architecture, f"docs/architecture.md does not name {name}"


def test_the_layout_names_every_chalicelib_module() -> None:
    """docs/architecture.md's layout is where a reader looks a module up: each one is in it, by
    its name or a pattern such as `store*.py` (package `__init__.py` files go by their folder)."""
    architecture = (ROOT / "docs" / "architecture.md").read_text()
    layout = architecture.split("## Layout", 1)[1].split("```")[1]
    names = set(re.findall(r"[\w*]+\.py", layout))
    missing = [
        path.relative_to(ROOT).as_posix()
        for path in sorted((ROOT / "chalicelib").rglob("*.py"))
        if path.name != "__init__.py" and not any(fnmatch.fnmatch(path.name, n) for n in names)
    ]
    assert missing == [], f"docs/architecture.md's layout does not name {missing}"


def test_the_measure_counts_lines_as_the_limits_say(tmp_path: Path) -> None:
    body = "".join(f"    x{i} = {i}\n" for i in range(44))
    short = tmp_path / "short.py"
    short.write_text(f"def fits():\n{body}\n" + "\n" * (MAX_MODULE_LINES - 46))
    long = tmp_path / "long.py"
    long.write_text(f"async def over():\n{body}    return 0\n" + "\n" * (MAX_MODULE_LINES - 45))
    assert short.read_text().count("\n") == MAX_MODULE_LINES
    assert offences([short], tmp_path) == set()
    assert offences([long], tmp_path) == {("long.py", "over"), ("long.py", "<module>")}
