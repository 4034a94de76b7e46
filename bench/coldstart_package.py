"""Cold start as Lambda runs it: imports from the unpacked deployment package.

`infra/package.sh` builds the package (dependencies and bytecode included); it is unpacked twice:
as shipped, and with every `__pycache__` removed, which is what `chalice package` alone ships.
`baseline(REV)` builds the same package from a git revision (`git archive` into a scratch
directory, then that revision's own `infra/package.sh` with this virtualenv's tools), so a run can
compare the tree against a baseline measured in the same minutes under the same load.
Each run is `python -S -X importtime` with only the package on `sys.path` (Lambda's
`/var/task`) and `PYTHONDONTWRITEBYTECODE=1`, because `/var/task` is read-only and Python there
cannot cache what it compiles. The package targets arm64; its compiled extension modules are
swapped for this machine's builds of the same pinned versions from the virtualenv, so both trees
load the same native code and differ only in bytecode.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
import tempfile
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from bench.common import PROJECT_DIR

BARE = "import boto3; from chalice.app import Chalice; app = Chalice(app_name='bare')"


@contextmanager
def unpacked() -> Iterator[tuple[Path, Path]]:
    """(as shipped, without bytecode): two unpacked copies of a freshly built package."""
    with tempfile.TemporaryDirectory(prefix="coldstart-package-") as scratch:
        shipped = _build(Path(PROJECT_DIR), Path(scratch))
        sources = Path(scratch) / "sources"
        shutil.copytree(shipped, sources, ignore=shutil.ignore_patterns("__pycache__"))
        yield shipped, sources


@contextmanager
def baseline(revision: str | None) -> Iterator[Path | None]:
    """The package of `revision` as shipped, unpacked; None (nothing built) without a revision."""
    if not revision:
        yield None
        return
    with tempfile.TemporaryDirectory(prefix="coldstart-baseline-") as scratch:
        tree = Path(scratch) / "tree"
        tree.mkdir()
        archive = subprocess.run(
            ["git", "archive", "--format=tar", revision],
            cwd=PROJECT_DIR,
            capture_output=True,
            check=True,
        )
        subprocess.run(["tar", "-x", "-C", str(tree)], input=archive.stdout, check=True)
        yield _build(tree, Path(scratch))


def _build(project: Path, scratch: Path) -> Path:
    """Package `project` with its own `infra/package.sh`; the unpacked package, host extensions in."""
    out_dir = scratch / "out"
    bin_dir = Path(sys.executable).parent
    env = {**os.environ, "OUT_DIR": str(out_dir), "SKIP_LINT": "1", "BIN": str(bin_dir)}
    env.pop("PROJECT_DIR", None)
    subprocess.run(
        ["bash", "infra/package.sh", "dev"],
        cwd=project,
        env=env,
        check=True,
        capture_output=True,
        text=True,
    )
    shipped = scratch / "shipped"
    with zipfile.ZipFile(out_dir / "deployment.zip") as package:
        package.extractall(shipped)
    _use_host_extensions(shipped)
    return shipped


def _use_host_extensions(root: Path) -> None:
    site = Path(sysconfig.get_paths()["purelib"])
    for extension in root.rglob("*.so"):
        relative = extension.parent.relative_to(root)
        module = extension.name.split(".", 1)[0]
        host = sorted((site / relative).glob(f"{module}.*.so"))
        if not host:
            raise RuntimeError(f"no build of {relative / module} for this machine in {site}")
        extension.unlink()
        shutil.copy2(host[0], extension.parent / host[0].name)


def command(root: Path, code: str) -> tuple[list[str], dict[str, str]]:
    """The interpreter command and environment that import `code` from the tree at `root`."""
    program = f"import sys; sys.path.insert(0, {str(root)!r}); {code}"
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
    env.pop("PYTHONPATH", None)
    return [sys.executable, "-S", "-X", "importtime", "-c", program], env
