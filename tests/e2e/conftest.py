"""Makes the e2e_platform helper module importable by the end-to-end tests (importlib mode)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))  # the e2e_platform helper module
