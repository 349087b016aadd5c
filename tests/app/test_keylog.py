"""The key log followed as a client writes it: appended lines, half lines, a truncated or replaced file."""

from __future__ import annotations

import os

from eyes_devine.app.keylog import FollowedKeyLog

RANDOM_A, RANDOM_B = "aa" * 32, "bb" * 32


def line(random: str, secret: str = "11") -> str:
    return f"CLIENT_RANDOM {random} {secret * 48}\n"


def test_lines_are_read_as_the_file_grows_and_a_half_line_waits_for_its_end(tmp_path):
    path = tmp_path / "keys.log"
    keys = FollowedKeyLog(path)  # not there yet: nothing, no error
    assert keys.secrets(bytes.fromhex(RANDOM_A)) is None
    path.write_text(line(RANDOM_A) + line(RANDOM_B)[:40])
    assert keys.secrets(bytes.fromhex(RANDOM_A)) is not None and keys.secrets(bytes.fromhex(RANDOM_B)) is None
    with open(path, "a") as file:
        file.write(line(RANDOM_B)[40:])
    assert keys.secrets(bytes.fromhex(RANDOM_B)) == {"CLIENT_RANDOM": bytes.fromhex("11" * 48)}


def test_a_truncated_or_replaced_file_is_read_from_its_start_and_an_old_half_line_is_dropped(tmp_path):
    path = tmp_path / "keys.log"
    path.write_text(line(RANDOM_A)[:50])  # the old file ends in a half line
    keys = FollowedKeyLog(path)
    replacement = tmp_path / "new.log"
    replacement.write_text(line(RANDOM_B, "22"))
    os.replace(replacement, path)
    assert keys.secrets(bytes.fromhex(RANDOM_B)) == {"CLIENT_RANDOM": bytes.fromhex("22" * 48)}
    assert keys.log.rejected == 0, "the old half line did not spoil the new first line"
    path.write_text(line(RANDOM_A, "33"))  # truncated and written again, shorter than before
    assert keys.secrets(bytes.fromhex(RANDOM_A)) == {"CLIENT_RANDOM": bytes.fromhex("33" * 48)}
