"""Build hooks only (all metadata is in pyproject.toml).

1. The compiled matching core (engine/_core.pyx, Cython) is built during the normal install.
2. The contract artifacts ship in the wheel: they live in ``contracts/artifacts`` (written by
   ``node contracts/build.mjs``, checked against the Solidity sources by a test); a wheel has no
   ``contracts/`` directory, so the build copies them into the ``settlement`` package as
   ``settlement/contract_artifacts/<Name>.json``, where ``settlement.artifacts`` finds them.

 The core is optional: without a C compiler (or
without Cython) the install still succeeds and ``engine`` uses its pure-Python reference engine;
``import engine`` then logs that once.
"""

import shutil
import sys
from pathlib import Path

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext
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


class OptionalBuildExt(build_ext):
    """``build_ext`` that reports a failed compile (once) instead of failing the install."""

    skipped = False

    def run(self) -> None:
        try:
            super().run()
        except Exception as exc:  # no compiler, broken toolchain, ...
            self._skip(exc)

    def build_extension(self, ext: Extension) -> None:
        try:
            super().build_extension(ext)
        except Exception as exc:
            self._skip(exc)

    def copy_extensions_to_source(self) -> None:
        if not self.skipped:  # nothing was built to copy
            super().copy_extensions_to_source()

    def _skip(self, exc: Exception) -> None:
        if not self.skipped:
            print(
                f"WARNING: engine: compiled core not built ({type(exc).__name__}: {exc}); "
                "the pure-Python reference engine will be used",
                file=sys.stderr,
            )
        self.skipped = True


def _extensions() -> list[Extension]:
    try:
        from Cython.Build import cythonize
    except ImportError:
        print("WARNING: engine: Cython not available; compiled core not built", file=sys.stderr)
        return []
    ext = Extension("engine._core", ["engine/_core.pyx"], extra_compile_args=["-O3"])
    return cythonize([ext], compiler_directives={"language_level": "3"}, quiet=True)


setup(ext_modules=_extensions(), cmdclass={"build_ext": OptionalBuildExt, "build_py": BuildWithArtifacts})
