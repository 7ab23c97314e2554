from __future__ import annotations

import os
from pathlib import Path

import pytest

from brillo.config import Config, Environ, EnvironError, environ, parse_env_file
from brillo.datastructures import URL, CommaSeparatedStrings, Secret


def test_config_reads_env_file_and_casts(tmp_path: Path) -> None:
    path = tmp_path / ".env"
    path.write_text(
        "# a comment\n"
        "\n"
        "DEBUG=true\n"
        "DATABASE_URL=postgres://user:pass@localhost/db\n"
        "REQUEST_TIMEOUT=2.5\n"
        "SECRET_KEY='12345'\n"
        'ALLOWED_HOSTS="127.0.0.1, localhost"\n'
        "PORT = 8000 \n"
        "no equals sign here\n"
    )
    config = Config(path, environ={})
    assert config("DEBUG", cast=bool) is True
    assert config("DATABASE_URL", cast=URL).password == "pass"
    assert config("REQUEST_TIMEOUT", cast=float) == 2.5
    secret = config("SECRET_KEY", cast=Secret)
    assert str(secret) == "12345"
    assert list(config("ALLOWED_HOSTS", cast=CommaSeparatedStrings)) == ["127.0.0.1", "localhost"]
    assert config("PORT", cast=int) == 8000
    assert config.get("PORT") == "8000"
    assert config("MISSING", default="x") == "x"
    assert config("MISSING", cast=int, default="3") == 3
    assert config("MISSING", cast=int, default=None) is None
    assert config("MISSING", default=None) is None


def test_config_environ_wins_over_file(tmp_path: Path) -> None:
    path = tmp_path / ".env"
    path.write_text("A=from-file\nB=file-only\n")
    config = Config(str(path), environ={"A": "from-env"})
    assert config("A") == "from-env"
    assert config("B") == "file-only"


def test_config_missing_key() -> None:
    config = Config(environ={})
    with pytest.raises(KeyError, match="Config 'NOPE' is missing, and has no default."):
        config("NOPE")
    with pytest.raises(KeyError, match="NOPE"):
        config.get("NOPE", cast=int)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("true", True), ("TRUE", True), ("1", True), ("false", False), ("False", False), ("0", False)],
)
def test_config_bool(raw: str, expected: bool) -> None:
    assert Config(environ={"B": raw})("B", cast=bool) is expected


def test_config_bool_default_is_not_cast_from_str() -> None:
    config = Config(environ={})
    assert config("B", cast=bool, default=False) is False
    assert config("B", cast=bool, default="true") is True


def test_config_bad_values() -> None:
    config = Config(environ={"B": "yes", "N": "twelve"})
    with pytest.raises(ValueError, match="Config 'B' has value 'yes'. Not a valid bool."):
        config("B", cast=bool)
    with pytest.raises(ValueError, match="Config 'N' has value 'twelve'. Not a valid int."):
        config("N", cast=int)

    def strict(value: str) -> str:
        raise TypeError("nope")

    with pytest.raises(ValueError, match="Not a valid strict"):
        config("N", cast=strict)


def test_config_prefix(tmp_path: Path) -> None:
    path = tmp_path / ".env"
    path.write_text("APP_FILE=1\n")
    config = Config(path, environ={"APP_DEBUG": "true", "DEBUG": "false"}, env_prefix="APP_")
    assert config("DEBUG", cast=bool) is True
    assert config("FILE", cast=int) == 1
    with pytest.raises(KeyError, match="APP_OTHER"):
        config("OTHER")


def test_config_missing_file_warns(tmp_path: Path) -> None:
    missing = tmp_path / "missing.env"
    with pytest.warns(UserWarning, match="Config file '.*missing.env' not found."):
        config = Config(missing, environ={"A": "1"})
    assert config("A") == "1"


def test_config_encoding(tmp_path: Path) -> None:
    path = tmp_path / ".env"
    path.write_bytes("NAME=café\n".encode("latin-1"))
    assert Config(path, environ={}, encoding="latin-1")("NAME") == "café"
    path.write_text("NAME=café\n", encoding="utf-8")
    assert Config(path, environ={})("NAME") == "café"


def test_config_uses_module_environ_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    config = Config()
    assert config.environ is environ
    monkeypatch.setenv("BRILLO_TEST_CONFIG_DEFAULT", "42")
    assert Config(environ=os.environ)("BRILLO_TEST_CONFIG_DEFAULT", cast=int) == 42


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("A=1", {"A": "1"}),
        ("  A  =  1  ", {"A": "1"}),
        ("A='quoted # not a comment'", {"A": "quoted # not a comment"}),
        ('A="double"  # trailing comment', {"A": "double"}),
        ("A=plain # comment", {"A": "plain"}),
        ("A=no#comment", {"A": "no#comment"}),
        ('A="line\\nbreak \\"q\\" \\\\"', {"A": 'line\nbreak "q" \\'}),
        ("A='single \\n raw'", {"A": "single \\n raw"}),
        ('A="unterminated', {"A": '"unterminated'}),
        ("A=", {"A": ""}),
        ('A=""', {"A": ""}),
        ("A=x=y", {"A": "x=y"}),
        ("export A=1", {"A": "1"}),
        ("# A=1\n  # B=2", {}),
        ("=value", {}),
        ("A=1\nA=2", {"A": "2"}),
        ("A=1\r\nB=2\r\n", {"A": "1", "B": "2"}),
    ],
)
def test_parse_env_file(text: str, expected: dict[str, str]) -> None:
    assert parse_env_file(text) == expected


def test_environ_guards_read_keys() -> None:
    backing = {"A": "1", "B": "2"}
    env = Environ(backing)
    env["C"] = "3"  # never read: fine
    del env["C"]
    assert env["A"] == "1"
    with pytest.raises(EnvironError, match=r"Attempting to set environ\['A'\]"):
        env["A"] = "x"
    with pytest.raises(EnvironError, match=r"Attempting to delete environ\['A'\]"):
        del env["A"]
    assert backing["A"] == "1"
    env["B"] = "changed"  # B has not been read yet
    assert backing["B"] == "changed"
    assert set(env) == {"A", "B"}
    assert len(env) == 2
    with pytest.raises(KeyError):
        env["MISSING"]


def test_environ_default_wraps_os_environ(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BRILLO_TEST_ENVIRON", "v")
    env = Environ()
    assert env["BRILLO_TEST_ENVIRON"] == "v"
    with pytest.raises(EnvironError):
        env["BRILLO_TEST_ENVIRON"] = "w"
    assert os.environ["BRILLO_TEST_ENVIRON"] == "v"
