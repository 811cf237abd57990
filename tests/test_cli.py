"""The `jrs-nb` console script: installed, lists its commands, rejects unknown ones."""
import subprocess

from jrs_nb.cli import COMMANDS


def run(*args):
    return subprocess.run(["jrs-nb", *args], capture_output=True, text=True, timeout=300)


def test_help_lists_every_command():
    r = run("--help")
    assert r.returncode == 0
    for name in COMMANDS: assert name in r.stdout


def test_unknown_command_fails_with_usage():
    r = run("frobnicate")
    assert r.returncode == 2 and "unknown command 'frobnicate'" in r.stderr


def test_every_command_has_help():
    for name in COMMANDS:
        r = run(name, "--help")
        assert r.returncode == 0 and "usage" in r.stdout.lower(), (name, r.stderr[-2000:])
