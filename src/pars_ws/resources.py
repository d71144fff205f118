"""Files shipped inside the package: the static contract (schemas/, wsdl/) and the migrations.

Read through importlib.resources, so an installed wheel finds them wherever it is run from; a
wheel is installed unpacked, so each is a directory on disk that lxml and Alembic can open.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path


def package_dir(name: str) -> Path:
    path = Path(str(resources.files("pars_ws").joinpath(name)))
    if not path.is_dir():
        raise FileNotFoundError(f"pars_ws/{name} is missing from the installed package")
    return path


def schema_dir() -> Path:
    return package_dir("schemas")


def wsdl_dir() -> Path:
    return package_dir("wsdl")
