"""Set-up shared by every test and every lesson run under pytest: nothing is written to the
user's own cache folder.

MINIGPT_CACHE points at a fresh temporary folder for the whole run (lessons run under nbval
inherit it), so compiled steps stored by one test may serve a later one, and the folder is
deleted at the end.
"""

import os
import shutil
import tempfile

_folder = tempfile.mkdtemp(prefix="minigpt-test-cache-")
os.environ["MINIGPT_CACHE"] = _folder


def pytest_unconfigure(config) -> None:
    shutil.rmtree(_folder, ignore_errors=True)
