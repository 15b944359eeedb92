import sys
from pathlib import Path

# tests/support holds the PIV fakes shared with the PC/SC tests (module names prefixed piv_)
_SUPPORT = str(Path(__file__).resolve().parents[2] / "support")
if _SUPPORT not in sys.path:
    sys.path.insert(0, _SUPPORT)
