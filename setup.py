"""Builds the one compiled module (the dedup loops, ``stages/dedup/_kernels.pyx``); everything else
is in pyproject.toml."""

from Cython.Build import cythonize
from setuptools import Extension, setup

setup(
    ext_modules=cythonize(
        [Extension("corpuspipe.stages.dedup._kernels", ["src/corpuspipe/stages/dedup/_kernels.pyx"],
                   extra_compile_args=["-O3"], include_dirs=["src/corpuspipe/stages/dedup"])],
        language_level=3,
    )
)
