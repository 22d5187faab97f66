"""Maps each top-level folder to a `tracehouse.<folder>` sub-package (metadata lives in pyproject.toml)."""

from setuptools import find_packages, setup

FOLDERS = ["collector", "agents", "query", "ui", "schemas", "bench", "demo"]

package_dir = {"tracehouse": "tracehouse"}
packages = ["tracehouse"] + [f"tracehouse.{p}" for p in find_packages("tracehouse")]
for folder in FOLDERS:
    package_dir[f"tracehouse.{folder}"] = folder
    packages.append(f"tracehouse.{folder}")
    packages += [f"tracehouse.{folder}.{sub}" for sub in find_packages(folder)]

setup(packages=packages, package_dir=package_dir)
