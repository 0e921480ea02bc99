"""Every shell script of the repository parses (bash -n) and is shellcheck-clean; the package's
scripts are executable."""

import re
import shutil
import subprocess

import pytest

from conftest import PACKAGE, REPO

SHEBANG = re.compile(rb"^#!\s*(/usr/bin/env\s+)?(/bin/|/usr/bin/)?(ba|da|k)?sh\b")
PACKAGE_SCRIPTS = ["build.sh", "run.sh", "files/run.sh", "files/build-steps.sh", "tests/run.sh"]


def shell_scripts():
    """Tracked files, plus new files not ignored by .gitignore, that are shell scripts by name or
    by their #! line."""
    listed = subprocess.run(
        ["git", "-C", str(REPO), "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        capture_output=True, check=True,
    ).stdout.split(b"\0")
    scripts = []
    for name in sorted({n.decode() for n in listed if n}):
        path = REPO / name
        if not path.is_file():
            continue
        if name.endswith(".sh"):
            scripts.append(path)
            continue
        with path.open("rb") as f:
            if SHEBANG.match(f.readline(128)):
                scripts.append(path)
    return scripts


def test_the_package_scripts_are_found_and_executable():
    found = set(shell_scripts())
    for name in PACKAGE_SCRIPTS:
        path = PACKAGE / name
        assert path in found, name
        assert path.stat().st_mode & 0o111, f"{name} is not executable"


def test_bash_parses_every_script():
    for path in shell_scripts():
        result = subprocess.run(["bash", "-n", str(path)], capture_output=True, text=True)
        assert result.returncode == 0, f"{path}: {result.stderr}"


def test_shellcheck_every_script():
    if shutil.which("shellcheck") is None:
        pytest.fail("shellcheck is not installed (apt-get install shellcheck; tests/run-all.sh installs it as root)")
    scripts = [str(p) for p in shell_scripts()]
    result = subprocess.run(["shellcheck", *scripts], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
