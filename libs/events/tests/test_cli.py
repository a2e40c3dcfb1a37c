"""The `atlas` command, run as operators run it: a subprocess whose stdout is the token."""

import io
import os
import shutil
import stat
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
import structlog

import atlas_events.auth as auth_module
from atlas_events.auth import AuthSettings, Role, TokenVerifier
from atlas_events.cli import main, parse_duration


def _env(**extra: str) -> dict[str, str]:
    src = str(Path(auth_module.__file__).resolve().parents[1])
    env = {k: v for k, v in os.environ.items() if k != "ATLAS_HOME"}
    env["PYTHONPATH"] = os.pathsep.join([src, os.environ.get("PYTHONPATH", "")])
    return {**env, **extra}


def atlas(
    *args: str, cwd: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "atlas_events.cli", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=env or _env(),
        timeout=60,
        check=False,
    )


def verifier_for(key_path: Path) -> TokenVerifier:
    return TokenVerifier(AuthSettings(local_key_path=key_path))


async def test_token_carries_the_requested_claims(tmp_path: Path) -> None:
    key_path = tmp_path / "keys" / "jwt.pem"
    run = atlas(
        "token",
        *("--role", "staff", "--role", "manager"),
        *("--sub", "agent-42", "--atlas-id", "ATLAS-BREST", "--key", str(key_path)),
        cwd=tmp_path,
    )
    assert run.returncode == 0, run.stderr
    # stdout is exactly the token, so `$(atlas token ...)` works even when the key is created.
    lines = run.stdout.splitlines()
    assert len(lines) == 1
    principal = await verifier_for(key_path).verify(lines[0])
    assert principal.sub == "agent-42"
    assert principal.roles == {Role.STAFF, Role.MANAGER}
    assert principal.atlas_id == "ATLAS-BREST"
    assert stat.S_IMODE(key_path.stat().st_mode) == 0o600


async def test_defaults_are_an_ops_token_under_atlas_home(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = tmp_path / "home"
    run = atlas("token", "--role", "ops", cwd=tmp_path, env=_env(ATLAS_HOME=str(home)))
    assert run.returncode == 0, run.stderr
    assert (home / "keys" / "jwt-ed25519.pem").is_file()
    assert not (tmp_path / ".atlas").exists()
    # A service started with the same ATLAS_HOME and default settings accepts it.
    monkeypatch.setenv("ATLAS_HOME", str(home))
    principal = await TokenVerifier(AuthSettings()).verify(run.stdout.strip())
    assert (principal.sub, principal.roles, principal.atlas_id) == (
        "ops-cli",
        frozenset({Role.OPS}),
        None,
    )


async def test_without_atlas_home_the_key_lives_in_dot_atlas(tmp_path: Path) -> None:
    run = atlas("token", "--role", "agent", "--sub", "agent-9", cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    principal = await verifier_for(tmp_path / ".atlas" / "keys" / "jwt-ed25519.pem").verify(
        run.stdout.strip()
    )
    assert principal.sub == "agent-9"


async def test_later_tokens_reuse_the_key(tmp_path: Path) -> None:
    key_path = tmp_path / "jwt.pem"
    first = atlas("token", "--role", "ops", "--key", str(key_path), cwd=tmp_path)
    pem = key_path.read_bytes()
    second = atlas("token", "--role", "agent", "--key", str(key_path), cwd=tmp_path)
    assert key_path.read_bytes() == pem
    verifier = verifier_for(key_path)
    assert (await verifier.verify(first.stdout.strip())).roles == {Role.OPS}
    assert (await verifier.verify(second.stdout.strip())).roles == {Role.AGENT}


async def test_ttl_sets_the_expiry(tmp_path: Path) -> None:
    key_path = tmp_path / "jwt.pem"
    run = atlas("token", "--role", "ops", "--ttl", "90m", "--key", str(key_path), cwd=tmp_path)
    claims = (await verifier_for(key_path).verify(run.stdout.strip())).claims
    assert claims["exp"] - claims["iat"] == 90 * 60


@pytest.mark.parametrize(
    ("args", "complaint"),
    [
        (["token", "--role", "wizard"], "invalid choice: 'wizard'"),
        (["token", "--sub", "x"], "--role"),
        (["token", "--role", "ops", "--ttl", "soon"], "not a duration"),
        (["token", "--role", "ops", "--ttl", "0s"], "must be positive"),
        ([], "COMMAND"),
    ],
)
def test_bad_arguments_exit_2_and_print_no_token(
    tmp_path: Path, args: list[str], complaint: str
) -> None:
    run = atlas(*args, cwd=tmp_path)
    assert run.returncode == 2
    assert complaint in run.stderr
    assert run.stdout == ""
    assert not (tmp_path / ".atlas").exists()


def test_staff_token_without_space_warns(tmp_path: Path) -> None:
    run = atlas("token", "--role", "staff", "--key", str(tmp_path / "k.pem"), cwd=tmp_path)
    assert run.returncode == 0
    assert "--atlas-id" in run.stderr
    assert run.stdout.count(".") == 2


def test_installed_console_script(tmp_path: Path) -> None:
    script = shutil.which("atlas", path=str(Path(sys.executable).parent))
    if script is None:
        pytest.skip("the atlas console script is installed by `pip install -e libs/events`")
    run = subprocess.run(
        [script, "token", "--role", "ops", "--key", str(tmp_path / "k.pem")],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert run.returncode == 0, run.stderr
    assert run.stdout.count(".") == 2


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("90", 90), ("90s", 90), ("15m", 900), ("8h", 28800), ("7d", 604800), ("1h30m", 5400)],
)
def test_parse_duration(text: str, seconds: int) -> None:
    assert parse_duration(text) == timedelta(seconds=seconds)


@pytest.mark.parametrize("text", ["", "h", "8x", "1.5h", "8h soon", "-5m"])
def test_parse_duration_refuses_nonsense(text: str) -> None:
    with pytest.raises(ValueError, match="not a duration"):
        parse_duration(text)


def test_an_in_process_run_leaves_later_logs_no_closed_stream(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`main` called in-process (as tests and tools do) must not bind the logs to the stderr of
    that moment: once that stream is closed, every later log call would raise."""
    saved_config = structlog.get_config()
    stream, saved_stderr = io.StringIO(), sys.stderr
    sys.stderr = stream
    try:
        assert main(["token", "--role", "ops", "--key", str(tmp_path / "k.pem")]) == 0
    finally:
        sys.stderr = saved_stderr
    stream.close()
    try:
        structlog.get_logger("after_the_command").warning("still_logging")
        assert "still_logging" in capsys.readouterr().err
    finally:
        structlog.configure(**saved_config)
