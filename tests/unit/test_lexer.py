"""The pre-processor: comments, quotes, braces, parameters, conditionals, generators, includes."""

from __future__ import annotations

from pykeepalived.config import LexerOptions, read_config, read_config_text
from pykeepalived.config.lexer import Lexer, decomment, split_shell_words
from pykeepalived.config.memfs import MemoryFileSystem


def words_of(text: str, **opts: object) -> list[tuple[str, ...]]:
    lexer = Lexer(MemoryFileSystem({}), LexerOptions(**opts))  # type: ignore[arg-type]
    return [s.words for s in lexer.segments_from_text("k.conf", text)]


def test_comments_start_with_hash_or_bang_outside_quotes() -> None:
    assert decomment('router_id "a#b" # note') == ('router_id "a#b"', False)
    assert decomment("x ! y") == ("x", False)
    assert decomment(r"x \# y") == ("x # y", False)


def test_braces_become_segments_of_their_own() -> None:
    assert words_of("track_interface { eth0 eth1 }") == [("track_interface",), ("{",), ("eth0", "eth1"), ("}",)]


def test_quoted_word_keeps_spaces() -> None:
    assert words_of('script "killall -0 haproxy"') == [("script", "killall -0 haproxy")]


def test_parameters_substitute_recursively() -> None:
    text = "$IF=eth0\n$LINE=interface $IF\n$LINE\n${IF}x\n"
    assert words_of(text) == [("interface", "eth0"), ("eth0x",)]


def test_multiline_parameter_expands_to_several_lines() -> None:
    text = "$ADDRS=10.0.0.1 \\\n 10.0.0.2\n\n$ADDRS\n"
    assert words_of(text) == [("10.0.0.1",), ("10.0.0.2",)]


def test_conditional_lines_follow_the_config_id() -> None:
    text = "@high priority 150\n@low priority 50\n@^high state BACKUP\n"
    assert words_of(text, config_id="high") == [("priority", "150")]
    assert words_of(text, config_id="low") == [("priority", "50"), ("state", "BACKUP")]


def test_seq_repeats_a_line_per_value() -> None:
    assert words_of("~SEQ(n, 1, 3) real_server 10.0.0.$n 80") == [
        ("real_server", "10.0.0.1", "80"),
        ("real_server", "10.0.0.2", "80"),
        ("real_server", "10.0.0.3", "80"),
    ]


def test_lst_repeats_a_line_per_value() -> None:
    assert words_of("~LST(i, eth0, eth1) track $i") == [("track", "eth0"), ("track", "eth1")]


def test_include_globs_relative_to_the_including_file() -> None:
    fs = MemoryFileSystem({
        "/etc/k/keepalived.conf": "include conf.d/*.conf\n",
        "/etc/k/conf.d/a.conf": "global_defs {\n router_id A\n}\n",
        "/etc/k/conf.d/b.conf": "global_defs {\n smtp_server 10.0.0.1\n}\n",
    })
    result = read_config("/etc/k/keepalived.conf", fs)
    assert result.config.global_defs.router_id == "A"
    assert result.config.global_defs.smtp_server == "10.0.0.1"
    assert result.config.files == ["/etc/k/keepalived.conf", "/etc/k/conf.d/a.conf", "/etc/k/conf.d/b.conf"]


def test_include_loop_is_an_error_at_the_include_line() -> None:
    fs = MemoryFileSystem({"/k/a.conf": "include b.conf\n", "/k/b.conf": "\ninclude a.conf\n"})
    errors = read_config("/k/a.conf", fs).errors
    assert [(e.location.file, e.location.line) for e in errors if e.location] == [("/k/b.conf", 2)]
    assert "include loop" in errors[0].message


def test_missing_include_is_only_a_warning() -> None:
    result = read_config_text("include /nowhere/*.conf\n")
    assert not result.errors and "missing" in result.warnings[0].message


def test_script_words_split_like_keepalived() -> None:
    assert split_shell_words("""notify "/bin/x 'a b' c" user""") == ["notify", "/bin/x 'a b' c", "user"]
    assert split_shell_words("/bin/x 'a b' c\\tz") == ["/bin/x", "a b", "c\tz"]
    assert split_shell_words("'open") is None


# keepalived 2.2.7's corners (each one checked against keepalived -t by a config in tests/compat/corpus/lexer/)
def test_a_backslash_ending_a_comment_still_counts() -> None:
    assert decomment("! note \\") == ("\\", True)
    assert decomment("$A=x # first \\") == ("$A=x\\", True)
    assert decomment("$A=x \\ # first") == ("$A=x \\", True)


def test_a_comment_line_ending_in_backslash_is_a_lone_backslash_keyword() -> None:
    assert words_of("! a comment \\\nrouter_id x\n") == [("\\",), ("router_id", "x")]


def test_a_plain_line_keeps_its_trailing_backslash() -> None:
    assert words_of("interface eth0 \\\n") == [("interface", "eth0\\")]


def test_escaped_hash_is_a_comment_on_the_second_pass() -> None:
    # keepalived's children read the parent's decommented copy: `\#` becomes `#`, then a comment
    assert words_of("192.0.2.10\\#24\n") == [("192.0.2.10",)]


def test_comment_line_in_a_definition_ends_it_unless_it_ends_in_backslash() -> None:
    assert words_of("$V=a \\\n# note\nb\n$V\n") == [("b",), ("a",)]
    assert words_of("$V=a \\\n# note \\\nb\n$V\n") == [("a",), ("b",)]
    assert words_of("$V=a \\\n! note \\\nb\n$V\n") == [("a",), ("b",)]


def test_trailing_comment_after_a_continuation_keeps_the_definition_open() -> None:
    assert words_of("$V=a \\ # first\nb\n$V\n") == [("a",), ("b",)]
    assert words_of("$V=a # first \\\nb\n$V\n") == [("a",), ("b",)]


def test_lines_longer_than_keepalived_buffer_come_in_pieces() -> None:
    long_comment = "# " + "x" * 1500
    assert words_of(long_comment + "\n") == [("x" * (1502 - 1023),)]


def test_include_takes_the_rest_of_the_line_quotes_and_all() -> None:
    fs = MemoryFileSystem({"/k/a.conf": "include \"b.conf\"\n", "/k/b.conf": "global_defs {\n router_id B\n}\n"})
    result = read_config("/k/a.conf", fs)
    assert not result.config.global_defs.router_id


def test_brace_alternatives_expand_like_the_shell() -> None:
    from pykeepalived.config.lexer import brace_alternatives

    assert brace_alternatives("a{b,c}d{e,f}") == ["abde", "abdf", "acde", "acdf"]
    assert brace_alternatives("x{1,{2,3}}") == ["x1", "x2", "x3"]
    assert brace_alternatives("x{1") == ["x{1"]


def _include_errors(line: str) -> list[int]:
    fs = MemoryFileSystem({"/k/a.conf": f"# head\n{line}\n", "/k/inc/one.conf": "\n"})
    return [e.location.line for e in read_config("/k/a.conf", fs).errors if e.location]


def test_include_variants_insist_as_keepalived_does() -> None:
    # a named file that is missing: an error for includem/w/a only
    assert [_include_errors(f"include{v} inc/none.conf") for v in ("", "r", "m", "w", "b", "a")] == \
        [[], [], [2], [2], [], [2]]
    # a wildcard that matches nothing in an existing directory: includew/a only
    assert [_include_errors(f"include{v} inc/none*.conf") for v in ("", "r", "m", "w", "b", "a")] == \
        [[], [], [], [2], [], [2]]
    # a brace alternative that is missing while another matches: includeb/a only
    assert [_include_errors(f"include{v} inc/{{one,two}}.conf") for v in ("", "r", "m", "w", "b", "a")] == \
        [[], [], [], [], [2], [2]]
