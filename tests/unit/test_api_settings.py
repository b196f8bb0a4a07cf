"""The API's settings: global_defs keywords, flags over keywords, and what is refused at start."""

from __future__ import annotations

from pathlib import Path

import pytest

from pykeepalived.api.settings import ApiSettingsError, parse_listen, read_token, resolve, token_matches
from pykeepalived.config import read_config_text
from pykeepalived.config.model import GlobalDefs
from pykeepalived.daemon.reload_plan import restart_needed

TOKEN = "0123456789abcdef-token"


@pytest.fixture
def token_file(tmp_path: Path) -> str:
    path = tmp_path / "token"
    path.write_text(TOKEN + "\n")
    return str(path)


def test_keywords_are_read_and_add_up() -> None:
    result = read_config_text("global_defs {\n pykeepalived_api unix:/run/a.sock 127.0.0.1:9650\n"
                              " pykeepalived_api [::1]:9651 127.0.0.1:9650\n pykeepalived_api_token_file /etc/t\n"
                              " pykeepalived_api_tls_cert /etc/c.pem\n pykeepalived_api_tls_key /etc/k.pem\n"
                              " pykeepalived_api_runtime\n}\n")
    assert not result.errors, result.errors
    g = result.config.global_defs
    assert g.pykeepalived_api == ["unix:/run/a.sock", "127.0.0.1:9650", "[::1]:9651"]
    assert str(g.pykeepalived_api_location) == "keepalived.conf:2"
    assert (g.pykeepalived_api_token_file, g.pykeepalived_api_tls_cert, g.pykeepalived_api_tls_key) == \
        ("/etc/t", "/etc/c.pem", "/etc/k.pem")
    assert g.pykeepalived_api_runtime is True
    assert read_config_text("global_defs {\n pykeepalived_api_runtime off\n}\n").config.global_defs \
        .pykeepalived_api_runtime is False


@pytest.mark.parametrize(("line", "words"), [
    ("pykeepalived_api unix:run/a.sock", "absolute path"),
    ("pykeepalived_api 127.0.0.1", "HOST:PORT"),
    ("pykeepalived_api ::1:80", "brackets"),
    ("pykeepalived_api 127.0.0.1:99999", "HOST:PORT"),
    ("pykeepalived_api", "missing a parameter"),
    ("pykeepalived_api_token_file token", "absolute path"),
    ("pykeepalived_api_runtime perhaps", "invalid boolean"),
])
def test_bad_keywords_name_file_line_and_keyword(line: str, words: str) -> None:
    result = read_config_text(f"global_defs {{\n {line}\n}}\n")
    assert len(result.errors) == 1, result.errors
    text = result.errors[0].format()
    assert "keepalived.conf:2" in text and line.split()[0] in text and words in text, text


def test_flags_win_over_keywords(token_file: str) -> None:
    s = resolve(["unix:/run/b.sock"], None, None, None, False, ["127.0.0.1:9650"], token_file, None, None, True)
    assert s.listen == ("unix:/run/b.sock",) and s.runtime and s.token_file == token_file and s.where == "--api"
    s = resolve([], None, None, None, False, ["unix:/run/a.sock"], config_where="k.conf:3: pykeepalived_api")
    assert s.listen == ("unix:/run/a.sock",) and not s.runtime and s.enabled
    assert not resolve([], None, None, None, False).enabled


def test_tcp_without_a_token_is_refused_naming_where() -> None:
    with pytest.raises(ApiSettingsError, match=r"k.conf:3: pykeepalived_api: an API on TCP must be authenticated"):
        resolve([], None, None, None, False, ["127.0.0.1:9650"], config_where="k.conf:3: pykeepalived_api")
    with pytest.raises(ApiSettingsError, match="--api: an API on TCP"):
        resolve(["127.0.0.1:9650"], None, None, None, False)
    resolve(["unix:/run/a.sock"], None, None, None, False)  # a unix socket needs none: it is root's only


def test_bad_token_files_and_half_tls_are_refused(tmp_path: Path, token_file: str) -> None:
    short = tmp_path / "short"
    short.write_text("abc\n")
    for path, words in ((str(tmp_path / "none"), "No such file"), (str(short), "at least 16")):
        with pytest.raises(ApiSettingsError, match=words):
            resolve(["127.0.0.1:1"], path, None, None, False)
    with pytest.raises(ApiSettingsError, match="both a certificate and its key"):
        resolve(["127.0.0.1:1"], token_file, token_file, None, False)
    with pytest.raises(ApiSettingsError, match="--api: API address 'x'"):
        resolve(["x"], None, None, None, False)


def test_bearer_tokens(token_file: str) -> None:
    token = read_token(token_file)
    assert token == TOKEN.encode()
    assert token_matches(f"Bearer {TOKEN}", token) and token_matches(f"bearer  {TOKEN} ", token)
    for header in (None, "", TOKEN, f"Basic {TOKEN}", f"Bearer {TOKEN}x", "Bearer ", "Bearer é"):
        assert not token_matches(header, token), header


def test_listen_words() -> None:
    assert parse_listen("unix:/run/x.sock") == ("unix", "/run/x.sock", 0)
    assert parse_listen("[::1]:9650") == ("tcp", "::1", 9650)
    assert parse_listen("0.0.0.0:80") == ("tcp", "0.0.0.0", 80)


def test_a_reload_that_changes_the_api_says_it_takes_a_restart() -> None:
    old, new = GlobalDefs(), GlobalDefs()
    new.pykeepalived_api = ["unix:/run/a.sock"]
    new.pykeepalived_api_runtime = True
    lines = restart_needed(old, new)
    assert any("pykeepalived_api changed" in line for line in lines), lines
    assert any("pykeepalived_api_runtime changed" in line for line in lines), lines


def test_config_test_refuses_a_tcp_api_without_a_token(tmp_path: Path, token_file: str,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    from pykeepalived.cli import main

    conf = tmp_path / "k.conf"
    conf.write_text("global_defs {\n router_id r\n pykeepalived_api 127.0.0.1:9650\n}\n")
    assert main(["-t", "-f", str(conf)]) != 0
    assert f"{conf}:3: pykeepalived_api: an API on TCP must be authenticated" in capsys.readouterr().err
    conf.write_text(f"global_defs {{\n pykeepalived_api 127.0.0.1:9650\n"
                    f" pykeepalived_api_token_file {token_file}\n}}\n")
    assert main(["-t", "-f", str(conf)]) == 0, capsys.readouterr().err
