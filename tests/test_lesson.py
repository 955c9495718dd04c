"""The lesson set-up: in Colab it installs clang (faked here, no network), elsewhere it installs nothing."""

import shutil
import sys
import tomllib
import types
from pathlib import Path

import pytest

from course import lesson


@pytest.fixture
def fake_colab(monkeypatch):
    monkeypatch.setitem(sys.modules, "google.colab", types.ModuleType("google.colab"))
    monkeypatch.setenv("DEV", "CPU")


def test_outside_colab_nothing_is_installed(monkeypatch):
    monkeypatch.setenv("DEV", "CPU")
    monkeypatch.delitem(sys.modules, "google.colab", raising=False)
    commands = []
    line = lesson.setup(run=commands.append)
    assert commands == []
    assert line.startswith("device CPU")


def test_colab_without_clang_installs_it(fake_colab, monkeypatch):
    real_which = shutil.which
    installed = []

    def which(name, *args, **kwargs):  # clang appears once apt-get has "installed" it
        if "clang" in name and not installed:
            return None
        return real_which(name, *args, **kwargs)

    def run(command):
        if command[:2] == ["apt-get", "install"]:
            installed.append(command)

    monkeypatch.setattr(shutil, "which", which)
    monkeypatch.setattr(lesson.os, "geteuid", lambda: 0)
    line = lesson.setup(run=run)
    assert installed == [["apt-get", "install", "-y", "-qq", "clang"]]
    assert "device CPU" in line


def test_colab_with_clang_installs_nothing(fake_colab):
    commands = []
    lesson.setup(run=commands.append)
    assert commands == []


def test_not_root_gets_the_sudo_command(fake_colab, monkeypatch):
    monkeypatch.setattr(shutil, "which", lambda name, *a, **k: None)
    monkeypatch.setattr(lesson.os, "geteuid", lambda: 1000)
    with pytest.raises(RuntimeError, match="sudo apt-get install -y clang"):
        lesson.install_clang(run=lambda command: None)


def test_quick_run_switch(monkeypatch):
    monkeypatch.setenv(lesson.QUICK_ENV, "1")
    assert lesson.quick() and lesson.pick(2000, 50) == 50
    monkeypatch.setenv(lesson.QUICK_ENV, "0")
    assert not lesson.quick() and lesson.pick(2000, 50) == 2000


def test_release_names_the_package_version():
    # Set-up cells install the tag RELEASE; it must be the version pyproject.toml builds.
    pyproject = tomllib.loads((Path(__file__).resolve().parents[1] / "pyproject.toml").read_text())
    assert "v" + pyproject["project"]["version"] == lesson.RELEASE
