"""The browser checks start JupyterLab and Chromium: they run from `make test-browser` only."""

import os

collect_ignore_glob = [] if os.environ.get("COURSE_BROWSER") else ["test_*.py"]
