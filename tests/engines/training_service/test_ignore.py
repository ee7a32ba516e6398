"""Gitignore pattern rules (the parts the code sync relies on), checked against what git documents."""

from __future__ import annotations

import pytest

from nascore_engines.training_service.ignore import RuleList, parse_rules


def matcher(*lines: str) -> RuleList:
    rules = RuleList()
    rules.add("", parse_rules(lines, ".gitignore"))
    return rules


def ignored(rules: RuleList, path: str, is_dir: bool = False) -> bool:
    return rules.matched(path, is_dir) is not None


def test_comments_blank_lines_and_escapes():
    rules = matcher("# a comment", "", "   ", r"\#hash", r"\!bang", "trailing   ", "kept\\ ")
    assert not ignored(rules, "# a comment") and ignored(rules, "#hash") and ignored(rules, "!bang")
    assert ignored(rules, "trailing") and not ignored(rules, "trailing   ")
    assert ignored(rules, "kept ")  # an escaped trailing space stays


def test_a_name_matches_at_any_depth_a_slash_anchors():
    rules = matcher("build", "/top.txt", "docs/*.md")
    assert ignored(rules, "build") and ignored(rules, "a/b/build", is_dir=True)
    assert ignored(rules, "top.txt") and not ignored(rules, "sub/top.txt")
    assert ignored(rules, "docs/a.md") and not ignored(rules, "docs/sub/a.md") and not ignored(rules, "x/docs/a.md")


def test_trailing_slash_matches_folders_only():
    rules = matcher("out/")
    assert ignored(rules, "out", is_dir=True) and ignored(rules, "pkg/out", is_dir=True)
    assert not ignored(rules, "out") and not ignored(rules, "pkg/out")


def test_negation_last_match_wins():
    rules = matcher("*.log", "!keep.log", "keep.log.old")
    assert ignored(rules, "a.log") and not ignored(rules, "keep.log") and not ignored(rules, "x/keep.log")
    assert matcher("!a.txt", "a.txt").matched("a.txt", False) is not None  # a later rule wins over a negation


@pytest.mark.parametrize(("pattern", "path", "expected"), [
    ("**/foo", "foo", True),
    ("**/foo", "a/b/foo", True),
    ("**/foo/bar", "x/foo/bar", True),
    ("abc/**", "abc/x", True),
    ("abc/**", "abc/x/y", True),
    ("abc/**", "abc", False),
    ("a/**/b", "a/b", True),
    ("a/**/b", "a/x/y/b", True),
    ("a/**/b", "b", False),
    ("*.py", "pkg/mod.py", True),
    ("a*b", "a/b", False),  # "*" never crosses "/"
    ("?.txt", "x.txt", True),
    ("?.txt", "xy.txt", False),
    ("[abc].txt", "b.txt", True),
    ("[!abc].txt", "b.txt", False),
    ("[!abc].txt", "d.txt", True),
    ("file[0-9]", "file7", True),
    ("[unclosed", "[unclosed", True),
])
def test_wildcards(pattern, path, expected):
    assert ignored(matcher(pattern), path) is expected


def test_rules_of_a_subfolder_apply_below_it_only_and_win():
    rules = RuleList()
    rules.add("", parse_rules(["*.csv"], ".gitignore"))
    rules.add("data", parse_rules(["!small.csv", "/raw/"], "data/.gitignore"))
    assert ignored(rules, "big.csv") and ignored(rules, "other/small.csv")
    assert not ignored(rules, "data/small.csv") and ignored(rules, "data/big.csv")
    assert ignored(rules, "data/raw", is_dir=True) and not ignored(rules, "raw", is_dir=True)
    rule = rules.matched("data/raw", True)
    assert rule is not None and rule.source == "data/.gitignore:2" and rule.pattern == "/raw/"


def test_which_patterns_reach_inside_a_folder():
    assert matcher("data/small.csv").may_match_below("data") and not matcher("data/small.csv").may_match_below("other")
    assert not matcher("data/small.csv").may_match_below("data/sub")
    assert matcher("**/keep").may_match_below("anything/deep")
    assert not matcher("!data/x").may_match_below("data")  # a negation names nothing to copy
    assert matcher("x/*/y").may_match_below("x") and matcher("x/*/y").may_match_below("x/q")
    assert not matcher("x/*/y").may_match_below("x/q/y")  # the pattern ends there
    assert not matcher(".env").may_match_below("data")  # a plain name names no path inside a folder
