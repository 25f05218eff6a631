"""Make this checkout's ``lib/`` importable, so every CLI here runs the library it ships with,
whether or not the package is installed in the environment that runs it (venv, conda, slurm)."""

import sys
from pathlib import Path

LIB = str(Path(__file__).resolve().parents[1] / "lib")
if LIB not in sys.path:
    sys.path.insert(0, LIB)
