"""A reviewer's sequences through the review app (AppTest on a real coded store), the review
logic they rest on, and the test set-up on a machine without a browser."""

from __future__ import annotations

import os
import subprocess
import sys

from conftest import REPO


# -- set-up: the README's test command on a machine without chromium -------------------------
def _pytest_browser_tests(**env):
    run_env = {k: v for k, v in os.environ.items() if k != "QUAL_REQUIRE_BROWSER"}
    run_env.update(env)
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-rs", "-p", "no:cacheprovider",
                           "tests/test_browser.py"], cwd=REPO, env=run_env,
                          capture_output=True, text=True, timeout=300)


def test_without_chromium_browser_tests_skip_saying_why_but_fail_in_ci():
    missing = "/nonexistent/chromium"
    fresh = _pytest_browser_tests(QUAL_CHROMIUM=missing)
    assert fresh.returncode == 0, fresh.stdout[-2000:]
    assert "skipped" in fresh.stdout and "error" not in fresh.stdout.lower()
    assert f"needs Debian's chromium at {missing}" in fresh.stdout
    ci = _pytest_browser_tests(QUAL_CHROMIUM=missing, QUAL_REQUIRE_BROWSER="1")
    assert ci.returncode != 0
    assert "QUAL_REQUIRE_BROWSER=1" in ci.stdout and "passed" not in ci.stdout
