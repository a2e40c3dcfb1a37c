"""Makes the dashboard_factories helper module importable by the tests (importlib mode)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))  # the dashboard_factories helper module
