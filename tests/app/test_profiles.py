"""The interface profiles are data: they load, validate, and fail with the place of the mistake."""

from __future__ import annotations

import pytest

from eyes_devine.app.profiles import KINDS, OS_NAMES, ProfileError, load_profile, parse_profile


@pytest.mark.parametrize("os_name", OS_NAMES)
def test_builtin_profiles_load_and_name_only_known_kinds(os_name):
    profile = load_profile(os_name)
    assert profile.os == os_name
    assert profile.patterns and profile.fallback and profile.bridge_kinds
    assert {pattern.kind for pattern in profile.patterns} <= set(KINDS)


def test_first_matching_pattern_wins():
    profile = load_profile("windows")
    assert profile.classify("vEthernet (WSL)").kind == "docker_vm_adapter"
    assert profile.classify("vEthernet (Default Switch)").kind == "vm_adapter"


def test_a_users_profile_file_replaces_the_builtin(tmp_path):
    path = tmp_path / "mine.toml"
    path.write_text('os = "linux"\n[selection]\nbridges = ["physical"]\n'
                    '[[pattern]]\nglob = "lab*"\nkind = "physical"\n')
    profile = load_profile(path=path)
    assert profile.source == str(path)
    assert profile.classify("lab0").kind == "physical"
    assert profile.classify("docker0") is None


@pytest.mark.parametrize(
    ("text", "complaint"),
    [
        ("os = 'plan9'", "'os' must be one of"),
        ("os = 'linux'\n[[pattern]]\nglob = 'x*'\nkind = 'wormhole'", "unknown kind 'wormhole'"),
        ("os = 'linux'\n[[pattern]]\nkind = 'physical'", "needs a non-empty 'glob'"),
        ("os = 'linux'\n[selection]\nbridges = ['nope']", "selection.bridges names unknown kinds"),
        ("os = = 'linux'", "not valid TOML"),
    ],
)
def test_malformed_profiles_fail_at_load_naming_the_problem(text, complaint):
    with pytest.raises(ProfileError, match=complaint):
        parse_profile(text, "mine.toml")


def test_missing_profile_file_is_one_clear_error(tmp_path):
    with pytest.raises(ProfileError, match="cannot read interface profile"):
        load_profile(path=tmp_path / "absent.toml")
