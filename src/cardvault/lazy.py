"""Modules imported on first use, so that a command line starts fast (issue 16).

``cardvault-agent --help`` must not wait for httpx, JOSE, FIDO2 and QR code libraries it does
not use; a command that needs one pays for it when it first touches it. Type checkers see the
ordinary import (``if TYPE_CHECKING``); at run time the name is bound to a lazy module.
"""

from __future__ import annotations

import importlib.util
import sys
from types import ModuleType


def lazy_module(name: str) -> ModuleType:
    """``name``, executed when one of its attributes is first read."""
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.find_spec(name)
    if spec is None or spec.loader is None:
        raise ModuleNotFoundError(name)
    loader = importlib.util.LazyLoader(spec.loader)
    spec.loader = loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    loader.exec_module(module)
    return module
