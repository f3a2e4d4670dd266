"""Every seeded defect still applies to the services as they are: a patch that no longer applies runs nothing, and
`make selftest` would count its defect as missed (or, in CI's subset, not notice at all)."""

from __future__ import annotations

import subprocess

import pytest

from acceptance.selftest import REPO_ROOT, load_defects


@pytest.mark.parametrize("defect", load_defects(), ids=lambda defect: defect.id)
def test_the_defect_applies_to_the_current_tree(defect) -> None:
    assert defect.patch is not None
    check = subprocess.run(
        ["git", "apply", "--check", str(defect.patch)], cwd=REPO_ROOT, capture_output=True, text=True, check=False
    )
    assert check.returncode == 0, f"{defect.patch.name} no longer applies: {check.stderr.strip()}"
