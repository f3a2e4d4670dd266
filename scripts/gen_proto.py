"""Generate the Python stubs of every contract: proto/ into the ecosystem package, and the example stack's
examples/proto/ into examples/api.

Run as `python scripts/gen_proto.py` (or `make proto`); `--check` exits 1 when the committed
stubs differ from what the contracts generate.
"""

from __future__ import annotations

import argparse
import filecmp
import shutil
import sys
import tempfile
from pathlib import Path

import grpc_tools
from grpc_tools import protoc

ROOT = Path(__file__).resolve().parent.parent
# proto root -> the package its stubs go to (the proto files' own folders below the root name it).
CONTRACTS = {
    ROOT / "proto": Path("ecosystem") / "api",
    ROOT / "examples" / "proto": Path("examples") / "api",
}


def generate(proto_root: Path, generated: Path, out_dir: Path) -> None:
    sources = sorted(str(p.relative_to(proto_root)) for p in proto_root.rglob("*.proto"))
    well_known = Path(grpc_tools.__file__).parent / "_proto"
    args = [
        "protoc",
        f"-I{proto_root}",
        f"-I{well_known}",
        f"--python_out={out_dir}",
        f"--pyi_out={out_dir}",
        f"--grpc_python_out={out_dir}",
        *sources,
    ]
    if protoc.main(args) != 0:
        sys.exit(f"protoc failed on {sources}")
    for package_dir in [out_dir / generated, *(out_dir / generated).rglob("*")]:
        if package_dir.is_dir():
            (package_dir / "__init__.py").touch()


def differences(left: Path, right: Path) -> list[str]:
    compared = filecmp.dircmp(left, right, ignore=["__pycache__"])
    found = [f"only in {compared.left}: {n}" for n in compared.left_only]
    found += [f"only in {compared.right}: {n}" for n in compared.right_only]
    found += [f"differs: {Path(compared.left) / n}" for n in compared.diff_files]
    for sub in compared.common_dirs:
        found += differences(left / sub, right / sub)
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--check", action="store_true", help="fail if committed stubs are stale")
    check = parser.parse_args().check
    for proto_root, generated in CONTRACTS.items():
        source = proto_root.relative_to(ROOT)
        with tempfile.TemporaryDirectory() as tmp:
            generate(proto_root, generated, Path(tmp))
            fresh, committed = Path(tmp) / generated, ROOT / generated
            if check:
                stale = differences(fresh, committed) if committed.exists() else [f"missing {committed}"]
                if stale:
                    sys.exit("generated stubs are stale, run `make proto`:\n  " + "\n  ".join(stale))
                print(f"stubs in {generated} match {source}/")
                continue
            shutil.rmtree(committed, ignore_errors=True)
            shutil.copytree(fresh, committed)
            print(f"generated {generated} from {source}/")


if __name__ == "__main__":
    main()
