"""Build hook only (all metadata is in pyproject.toml): ship the compiled contract artifacts.

The artifacts live in ``contracts/artifacts`` (written by ``node contracts/build.mjs``, checked
against the Solidity sources by a test). A wheel has no ``contracts/`` directory, so the build
copies them into the ``settlement`` package as ``settlement/contract_artifacts/<Name>.json``,
where ``settlement.artifacts`` finds them with ``importlib.resources``.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

ARTIFACTS = Path(__file__).resolve().parent / "contracts" / "artifacts"


class BuildWithArtifacts(build_py):
    def run(self) -> None:
        super().run()
        sources = sorted(ARTIFACTS.glob("*.json"))
        if not sources:
            raise SystemExit(f"no contract artifacts in {ARTIFACTS}: run `node contracts/build.mjs`")
        target = Path(self.build_lib) / "settlement" / "contract_artifacts"
        target.mkdir(parents=True, exist_ok=True)
        for source in sources:
            shutil.copyfile(source, target / source.name)


setup(cmdclass={"build_py": BuildWithArtifacts})
