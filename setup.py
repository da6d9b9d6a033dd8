"""Packages, and the top-level conf/ and baselines/ shipped inside the wheel (dd_bench.conf, dd_bench.baselines).

They stay at the top of the checkout, where users look for them; dd_bench/resources.py finds either location.
Everything else is in setup.cfg.
"""

from setuptools import find_packages, setup

setup(
    packages=find_packages(include=["dd_bench", "dd_bench.*"]) + ["dd_bench.conf", "dd_bench.baselines"],
    package_dir={"dd_bench.conf": "conf", "dd_bench.baselines": "baselines"},
)
