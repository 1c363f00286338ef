"""Builds the compiled matching core (engine/_core.pyx, Cython) during the normal install.

Everything else is declared in pyproject.toml. The core is optional: without a C compiler (or
without Cython) the install still succeeds and ``engine`` uses its pure-Python reference engine;
``import engine`` then logs that once.
"""

import sys

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext


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


setup(ext_modules=_extensions(), cmdclass={"build_ext": OptionalBuildExt})
