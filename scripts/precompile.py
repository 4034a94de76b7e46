"""Add compiled bytecode to a Chalice deployment package, so Lambda does not compile on each cold start.

    python -m scripts.precompile build/dev/deployment.zip build/dev/sam.yaml

`chalice package` ships sources only (3,975 `.py`, no `.pyc`, on 2026-12-02). Lambda unpacks the
package into `/var/task`, and the execution environment's one writeable directory is `/tmp`
("Security Overview of AWS Lambda", section "Lambda isolation technologies",
https://docs.aws.amazon.com/whitepapers/latest/security-overview-aws-lambda/lambda-isolation-technologies.html,
read 2026-12-02), so Python cannot cache what it compiles there: every cold start compiles every
module it imports, `anthropic`, `pydantic` and `botocore` included. This script adds a
`__pycache__/*.pyc` beside each source:

- unchecked-hash pycs (PEP 552; `py_compile.PycInvalidationMode.UNCHECKED_HASH`): used without
  looking at the source's timestamp, which the zip's 2-second DOS times and Lambda's unpacking do
  not preserve exactly; the package is immutable once built, so source and bytecode never part;
- compiled as `/var/task/<path>`, the path Lambda runs them from, so tracebacks name it;
- only for the Python that runs them: a pyc is tied to its interpreter's minor version, so the
  script refuses a template whose functions run another `pythonX.Y` than the one packaging.

Sources the interpreter cannot compile (none today) keep no pyc and are listed.
"""

from __future__ import annotations

import argparse
import compileall
import importlib.util
import py_compile
import shutil
import sys
import tempfile
import zipfile
from pathlib import Path

import yaml

LAMBDA_TASK_ROOT = "/var/task"
# -rw-r--r-- for a regular file, in a zip entry's high 16 bits.
FILE_MODE = 0o100644 << 16


def this_runtime() -> str:
    return f"python{sys.version_info.major}.{sys.version_info.minor}"


def template_runtimes(template: Path) -> set[str]:
    """Every `Runtime` of the template's functions (globals included)."""
    document = yaml.safe_load(template.read_text(encoding="utf-8"))
    found: set[str] = set()
    runtime = (document.get("Globals") or {}).get("Function", {}).get("Runtime")
    if runtime:
        found.add(runtime)
    functions = {"AWS::Serverless::Function", "AWS::Lambda::Function"}
    for resource in (document.get("Resources") or {}).values():
        runtime = (resource.get("Properties") or {}).get("Runtime")
        if resource.get("Type") in functions and runtime:
            found.add(runtime)
    return found


def precompile(package: Path) -> tuple[int, list[str]]:
    """Rewrite `package` with a pyc for each source: (pycs added, sources left without one)."""
    with tempfile.TemporaryDirectory(prefix="precompile-") as scratch:
        root = Path(scratch) / "task"
        with zipfile.ZipFile(package) as original:
            entries = original.infolist()
            original.extractall(root)
        compileall.compile_dir(
            root,
            ddir=LAMBDA_TASK_ROOT,
            quiet=2,
            workers=0,
            invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH,
        )
        rebuilt = Path(scratch) / "deployment.zip"
        added, missing = _write(rebuilt, root, entries)
        shutil.move(rebuilt, package)
    return added, missing


def _write(target: Path, root: Path, entries: list[zipfile.ZipInfo]) -> tuple[int, list[str]]:
    added = 0
    missing: list[str] = []
    with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as rebuilt:
        for entry in entries:
            rebuilt.writestr(entry, (root / entry.filename).read_bytes())
            if entry.is_dir() or not entry.filename.endswith(".py"):
                continue
            compiled = Path(importlib.util.cache_from_source(entry.filename))
            if not (root / compiled).exists():
                missing.append(entry.filename)
                continue
            info = zipfile.ZipInfo(compiled.as_posix(), date_time=entry.date_time)
            info.external_attr = FILE_MODE
            info.compress_type = zipfile.ZIP_DEFLATED
            rebuilt.writestr(info, (root / compiled).read_bytes())
            added += 1
    return added, missing


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("package", type=Path, help="deployment.zip, rewritten in place")
    parser.add_argument("template", type=Path, help="the packaged template (sam.yaml)")
    args = parser.parse_args(argv)
    runtimes = template_runtimes(args.template)
    if runtimes != {this_runtime()}:
        print(
            f"error: the functions run {sorted(runtimes)}, this interpreter is {this_runtime()}: "
            "its bytecode would be ignored; package with the functions' Python",
            file=sys.stderr,
        )
        return 1
    added, missing = precompile(args.package)
    print(f"==> precompiled {added} modules for {this_runtime()} into {args.package}")
    for source in missing:
        print(f"    no bytecode (does not compile): {source}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
