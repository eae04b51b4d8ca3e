"""Off this machine only with a password: the serve verb refuses a network address without FCLAB_PASSWORD before
anything binds (finding the address as Streamlit does), and wrong passwords are answered ever more slowly. No test
here binds a non-loopback address: the refusals happen before Streamlit starts."""
import os
import subprocess
import sys

import pytest

from dashboard_lib import security
from dashboard_lib.cli import main
from dashboard_lib.security import ERR_REFUSED, LoginThrottle, refusal, streamlit_address
from tests.conftest import REPO


def test_only_loopback_is_served_without_a_password():
    for address in ("127.0.0.1", "127.0.0.2", "::1", "localhost"):
        assert refusal(address, None) is None
    for address in ("0.0.0.0", "", "::", "192.0.2.7", "example.org"):
        assert refusal(address, "s3cret") is None
        assert refusal(address, None) == ERR_REFUSED.format(address=address or "every network interface")
    assert "\n" not in ERR_REFUSED and "FCLAB_PASSWORD" in ERR_REFUSED


def _config(folder, address):
    (folder / ".streamlit").mkdir(parents=True, exist_ok=True)
    (folder / ".streamlit" / "config.toml").write_text(f'[server]\naddress = "{address}"\nport = 8501\n')


def test_the_address_is_found_as_streamlit_finds_it(tmp_path):
    home, cwd, script = tmp_path / "home", tmp_path / "cwd", tmp_path / "script"
    for folder in (home, cwd, script):
        folder.mkdir()
    where = dict(cwd=cwd, home=home, script_dir=script)
    assert streamlit_address([], env={}, **where) == ""  # Streamlit's default: every interface
    _config(home, "10.0.0.1")
    assert streamlit_address([], env={}, **where) == "10.0.0.1"
    _config(cwd, "10.0.0.2")  # the project's file wins over the user's
    assert streamlit_address([], env={}, **where) == "10.0.0.2"
    _config(script, "127.0.0.1")  # the script's folder's over both (this repo's .streamlit/config.toml)
    assert streamlit_address([], env={}, **where) == "127.0.0.1"
    env = {"STREAMLIT_SERVER_ADDRESS": "0.0.0.0"}  # the environment over the files
    assert streamlit_address([], env=env, **where) == "0.0.0.0"
    assert streamlit_address(["--server.port", "9", "--server.address", "::"], env=env, **where) == "::"
    assert streamlit_address(["--server.address=192.0.2.1", "--server.address", "127.0.0.1"], env=env, **where) == "127.0.0.1"
    assert streamlit_address(["--server.address", "env:BIND"], env={"BIND": "0.0.0.0"}, **where) == "0.0.0.0"
    (cwd / ".streamlit" / "config.toml").write_text("[server\naddress = ")  # broken: Streamlit reports it itself
    assert streamlit_address([], env={}, cwd=cwd, home=home) == "10.0.0.1"
    assert streamlit_address([], env={}, cwd=REPO, home=home, script_dir=REPO) == "127.0.0.1"  # as shipped


def test_serve_refuses_a_network_address_without_a_password_before_binding(monkeypatch, capsys, tmp_path):
    monkeypatch.delenv("FCLAB_PASSWORD", raising=False)
    monkeypatch.delenv("STREAMLIT_SERVER_ADDRESS", raising=False)
    for args, address in ((["--server.address", "0.0.0.0"], "0.0.0.0"), (["--server.address=192.0.2.7"], "192.0.2.7"),
                          (["--server.address", ""], "every network interface")):
        assert main(["serve", *args]) == 2, args
        err = capsys.readouterr().err
        assert err == f"error: {ERR_REFUSED.format(address=address)}\n"
    monkeypatch.setenv("STREAMLIT_SERVER_ADDRESS", "0.0.0.0")  # the address from the environment, as Streamlit reads it
    assert main(["serve", "--server.port", "8599"]) == 2
    assert "refusing to serve on 0.0.0.0 without a password" in capsys.readouterr().err


def test_serve_runs_streamlit_with_its_arguments(tmp_path):
    """Allowed (loopback, or a password): this process becomes `streamlit run app.py ARGS…` (its --help: nothing binds)."""
    env = {k: v for k, v in os.environ.items() if k not in ("FCLAB_PASSWORD", "STREAMLIT_SERVER_ADDRESS")}
    out = subprocess.run([sys.executable, "-m", "dashboard_lib", "serve", "--help"], cwd=tmp_path,
                         env={**env, "PYTHONPATH": str(REPO)}, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and "Usage: streamlit run" in out.stdout, out.stderr
    env["FCLAB_PASSWORD"] = "correct horse"
    out = subprocess.run([sys.executable, "-m", "dashboard_lib", "serve", "--server.address", "0.0.0.0", "--help"],
                         cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and "Usage: streamlit run" in out.stdout, out.stderr


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


def test_wrong_guesses_wait_twice_as_long_each_time_per_session():
    clock = Clock()
    throttle = LoginThrottle(base=0.5, cap=30.0, free=100, clock=clock)
    assert [throttle.failed("a") for _ in range(8)] == [0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0]
    assert throttle.failed("b") == 0.5 and throttle.failures("a") == 8  # another session starts afresh
    throttle.succeeded("a")  # the right password resets the session
    assert throttle.failures("a") == 0 and throttle.failed("a") == 0.5
    assert throttle.before_guess() == 0.0  # few wrong guesses overall: no turn to wait for


def test_many_wrong_guesses_across_sessions_are_answered_in_turn():
    clock = Clock()
    throttle = LoginThrottle(base=0.5, cap=30.0, window=60.0, free=3, step=1.0, clock=clock)
    for i in range(3):  # one guess per fresh session (a reload each time) escapes the per-session delay
        assert throttle.before_guess() == 0.0 and throttle.failed(f"s{i}") == 0.5
    assert throttle.before_guess() == 0.0  # the first one over the limit goes first ...
    throttle.failed("s3")
    # ... then every guess, right or wrong, from any session, waits for its turn: turns step × (wrong guesses over the
    # limit) apart, so further apart with each wrong guess
    assert [throttle.before_guess() for _ in range(3)] == [0.0, 1.0, 2.0]
    throttle.failed("s4")
    assert [throttle.before_guess() for _ in range(2)] == [3.0, 5.0]
    clock.now += 61  # a quiet minute: the window forgets them
    assert throttle.before_guess() == 0.0
    capped = LoginThrottle(free=0, step=10.0, cap=30.0, clock=clock)
    for i in range(5):
        capped.failed(f"s{i}")
    assert capped.before_guess() == 0.0 and capped.before_guess() == 30.0  # turns at most cap apart


def test_the_throttle_forgets_the_oldest_of_very_many_sessions():
    throttle = LoginThrottle(max_sessions=10, free=1000, clock=Clock())
    for i in range(25):
        throttle.failed(f"s{i}")
    assert throttle.failures("s24") == 1 and len(throttle._failures) <= 11


def test_the_page_message_for_an_open_server_says_it_stopped():
    assert "no password is set" in security.ERR_NO_PASSWORD and "stopped" in security.ERR_NO_PASSWORD


def test_an_address_given_empty_means_every_interface(tmp_path):
    assert streamlit_address(["--server.address", ""], env={}, cwd=REPO, home=tmp_path, script_dir=REPO) == ""
    assert streamlit_address([], env={"STREAMLIT_SERVER_ADDRESS": ""}, cwd=REPO, home=tmp_path, script_dir=REPO) == ""
