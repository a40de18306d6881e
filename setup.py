"""Package list for setuptools: discovered (namespace-aware, so the dashboard's `static/`
counts as the package it is), so a new sub-package cannot be left out of the wheel, plus
the example `config/` directory shipped as `towerco_notify.example_config` (the daemon
falls back to it when started where no `config/` exists). Everything else about the
package is in pyproject.toml."""

from setuptools import find_namespace_packages, setup

TOP_LEVEL = ("notify_core", "pipeline", "sio_server", "escalation", "towerco_notify")
EXAMPLE_CONFIG = "towerco_notify.example_config"

setup(
    packages=[
        *find_namespace_packages(
            include=[*TOP_LEVEL, *(f"{name}.*" for name in TOP_LEVEL)],
            exclude=["*.__pycache__"],
        ),
        EXAMPLE_CONFIG,
    ],
    package_dir={EXAMPLE_CONFIG: "config"},
)
