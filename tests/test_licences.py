"""Licences of what ``pip install textdrop`` brings in (the default install, no extras): none is GPL-only.

The closure is walked from textdrop's own requirements in this environment's metadata (markers evaluated
here, extras not followed), and each package's licence is read by pip-licenses (the project metadata's
licence expression, or its classifiers). A GPL-family licence passes only where the package also offers a
non-GPL choice (an ``OR`` expression) or is the Lesser GPL, which allows linking.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from importlib.metadata import PackageNotFoundError, distribution

from packaging.requirements import Requirement

REPO_LICENCE = "Apache-2.0"


def default_install() -> set[str]:
    """Names of every distribution ``pip install textdrop`` installs here, textdrop excluded."""
    seen: set[str] = set()
    todo = [Requirement(r) for r in distribution("textdrop").requires or []]
    while todo:
        requirement = todo.pop()
        if requirement.marker is not None and not requirement.marker.evaluate({"extra": ""}):
            continue
        name = re.sub(r"[-_.]+", "-", requirement.name).lower()
        if name in seen:
            continue
        try:
            dist = distribution(name)
        except PackageNotFoundError:
            continue  # a platform-specific requirement not installed here (its marker said another OS)
        seen.add(name)
        todo.extend(Requirement(r) for r in dist.requires or [])
    return seen


def is_gpl_only(licence: str) -> bool:
    """True for a GPL/AGPL licence with no permissive alternative; the LGPL allows linking, so it passes."""
    choices = re.split(r"\bOR\b|;", licence)
    return all(re.search(r"(?<![L])GPL|GNU (Affero )?General Public", choice) for choice in choices)


def test_the_gpl_check_tells_licences_apart() -> None:
    assert is_gpl_only("GPL-3.0-only") and is_gpl_only("GNU General Public License v2 (GPLv2)")
    assert is_gpl_only("AGPL-3.0")
    assert not is_gpl_only("LGPL-3.0-or-later") and not is_gpl_only("GNU Lesser General Public License v3")
    assert not is_gpl_only("GPL-2.0-or-later OR MIT") and not is_gpl_only("BSD-3-Clause")


def test_default_install_has_no_gpl_only_package() -> None:
    names = default_install()
    assert {"rapidocr", "onnxruntime", "pi-heif", "pypdfium2"} <= names  # the walk found the real closure
    assert "pillow-heif" not in names, "pillow-heif bundles the GPL x265 encoder; the runtime uses pi-heif"
    assert "rapidfuzz" not in names, "rapidfuzz belongs to the bench extra"
    report = subprocess.run(
        [sys.executable, "-m", "piplicenses", "--from=mixed", "--format=json", "--packages", *sorted(names)],
        capture_output=True,
        text=True,
        check=True,
    )
    licences = {row["Name"]: row["License"] for row in json.loads(report.stdout)}
    assert len(licences) == len(names), set(names) ^ {re.sub(r"[-_.]+", "-", n).lower() for n in licences}
    offending = {name: licence for name, licence in licences.items() if is_gpl_only(licence)}
    assert not offending, f"GPL-only packages in the default install: {offending}"
    assert distribution("textdrop").metadata["License-Expression"] == REPO_LICENCE
