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


def test_every_command_has_help(capsys):
    "Each command's --help, in this process (the console script itself is run by the tests above)."
    from jrs_nb.cli import main
    for name in COMMANDS:
        try: code = main([name, "--help"])
        except SystemExit as e: code = e.code
        out = capsys.readouterr().out
        assert code in (0, None) and "usage" in out.lower(), (name, code, out[-2000:])
