"""Builds the C++ search extension `azero._mcts` (pybind11). Everything else is in pyproject.toml."""
import sys

from pybind11.setup_helpers import Pybind11Extension, build_ext
from setuptools import find_packages, setup

extra_compile_args = ["-O3"] if sys.platform != "win32" else ["/O2"]

ext_modules = [
    Pybind11Extension(
        "azero._mcts",
        sorted(["csrc/tree.cc", "csrc/search.cc", "csrc/kernels.cc", "csrc/bindings.cc"]),
        include_dirs=["csrc"],
        cxx_std=17,
        extra_compile_args=extra_compile_args,
    ),
]

packages = find_packages(include=["azero", "azero.*"]) + [
    "azero.games" + name[len("games"):] for name in find_packages(include=["games", "games.*"])
]

packages.append("azero.configs")  # data package: the bundled YAML configs (configs/)

setup(packages=packages, ext_modules=ext_modules, cmdclass={"build_ext": build_ext})
