"""Every lock file pins each release with the sha256 of its files, and the Makefile installs each in hash-checking mode.

No network: these read the repository (and `make -n`'s plan) only. A pin without a hash, or an install that
would not check hashes, fails here; whether the hashes are those PyPI serves is what `make lock` writes and
pip checks when it installs.
"""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest

from tests.security.lockfile import (
    DEV_LOCK_PATH,
    LOCK_PATH,
    LOCK_PATHS,
    LOCK_SOURCES,
    PROJECT_ROOT,
    Pin,
    UnhashedPinError,
    UnpinnedRequirementError,
    direct_pins,
    parse_lock,
    read_lock,
    read_pins,
    require_hashes,
)

SHA256 = re.compile(r"^sha256:[0-9a-f]{64}$")
LOCK_IDS = [str(path.relative_to(PROJECT_ROOT)) for path in LOCK_PATHS]


@pytest.mark.parametrize("lock", LOCK_PATHS, ids=LOCK_IDS)
def test_every_pin_of_every_lock_has_a_sha256_hash(lock: Path) -> None:
    pins = read_lock(lock)
    try:
        require_hashes(pins, str(lock.relative_to(PROJECT_ROOT)))
    except UnhashedPinError as exc:
        pytest.fail(str(exc))

    assert pins
    assert all(SHA256.match(digest) for pin in pins for digest in pin.hashes)


@pytest.mark.parametrize("lock", LOCK_PATHS, ids=LOCK_IDS)
def test_every_lock_pins_its_in_file_s_choices(lock: Path) -> None:
    # The .in file's own pins are the lock's versions: an edit of the .in not followed by `make lock` fails here.
    locked = {(pin.name, pin.version) for pin in read_lock(lock)}
    chosen = direct_pins(LOCK_SOURCES[lock])

    assert sorted(set(chosen.items()) - locked) == [], f"{lock.name} is stale: run `make lock`"


def test_the_layer_s_compiled_releases_carry_every_file_s_hash() -> None:
    # Every file of the release, not only this machine's wheel: installs verify on macOS and Lambda alike.
    hashes = {pin.name: pin.hashes for pin in read_lock(LOCK_PATH)}

    assert len(hashes["pydantic-core"]) > 20
    assert len(hashes["wrapt"]) > 20


def test_the_development_lock_pins_the_layer_s_packages_at_the_layer_s_versions() -> None:
    layer = read_pins(LOCK_PATH)
    development: dict[str, set[str]] = {}
    for pin in read_lock(DEV_LOCK_PATH):
        development.setdefault(pin.name, set()).add(pin.version)

    assert {name: development.get(name) for name in layer} == {name: {version} for name, version in layer.items()}


def test_the_development_lock_is_made_from_the_layer_s_direct_pins_held_at_the_layer_lock() -> None:
    lines = (PROJECT_ROOT / "requirements-dev.in").read_text(encoding="utf-8").splitlines()

    assert {"-r layers/dependencies/requirements.in", "-c layers/dependencies/requirements.txt"} <= set(lines)


def test_every_install_and_download_from_a_lock_checks_hashes() -> None:
    # The plan of a from-scratch install: each `pip install -r`/`pip download -r` line of it.
    environment = {name: value for name, value in os.environ.items() if name not in {"MAKEFLAGS", "MFLAGS"}}
    planned = subprocess.run(
        [
            "make",
            "--no-print-directory",
            "-C",
            str(PROJECT_ROOT),
            "-n",
            "-B",
            "venv",
            "sam-cli",
            "checkov-cli",
            "wheelhouse",
        ],
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert planned.returncode == 0, planned.stderr
    commands = planned.stdout.replace("\\\n", " ").splitlines()
    from_files = [command for command in commands if re.search(r"-m pip (install|download) .*-r ", command)]
    read = {match for command in from_files for match in re.findall(r"-r (\S+)", command)}

    assert [command for command in from_files if "--require-hashes" not in command] == []
    assert read == {str(path.relative_to(PROJECT_ROOT)) for path in LOCK_PATHS} - {"requirements-uv.txt"}


# The parser, on small inline lock files.

HASH_A = "sha256:" + "a" * 64
HASH_B = "sha256:" + "b" * 64


def test_a_pin_continued_over_lines_keeps_its_hashes_and_its_marker() -> None:
    text = (
        "# a header\n"
        f"six==1.17.0 \\\n    --hash={HASH_A} \\\n    --hash={HASH_B}\n    # via python-dateutil\n"
        f"colorama==0.4.6 ; sys_platform == 'win32' \\\n    --hash={HASH_A}\n"
    )

    assert parse_lock(text, "inline.txt") == [
        Pin(name="six", version="1.17.0", marker=None, hashes=(HASH_A, HASH_B), line=2),
        Pin(name="colorama", version="0.4.6", marker="sys_platform == 'win32'", hashes=(HASH_A,), line=6),
    ]


def test_a_pin_without_a_hash_fails_naming_the_file_the_pin_and_make_lock() -> None:
    pins = parse_lock(f"six==1.17.0 \\\n    --hash={HASH_A}\nTyping_Extensions==4.16.0\n", "requirements-x.txt")

    with pytest.raises(UnhashedPinError) as raised:
        require_hashes(pins, "requirements-x.txt")

    message = str(raised.value)
    assert message.startswith("requirements-x.txt: no --hash=sha256: for typing-extensions==4.16.0 (line 3)")
    assert "six" not in message
    assert "run `make lock`" in message


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("boto3>=1.44\n", r"inline.txt:1: 'boto3>=1.44' is not pinned as name==version"),
        (f"boto3==1.44.8 \\\n    --hash=md5:{'a' * 32}\n", r"inline.txt:1: '--hash=md5:a+' after 'boto3==1.44.8'"),
        ("boto3==1.44.8 --hash=sha256:abc\n", r"is not --hash=sha256:<64 hex digits>"),
        (f"boto3==1.44.8\n    --hash={HASH_A}\n", r"inline.txt:2: '--hash=sha256:a+' follows no requirement"),
    ],
)
def test_a_line_that_is_no_hashed_pin_is_named(text: str, expected: str) -> None:
    with pytest.raises(UnpinnedRequirementError, match=expected):
        parse_lock(text, "inline.txt")


def test_the_layer_lock_pins_each_name_once(tmp_path: Path) -> None:
    forked = tmp_path / "requirements.txt"
    forked.write_text(
        f"numpy==2.4.6 ; python_version < '3.12' --hash={HASH_A}\n"
        f"numpy==2.5.5 ; python_version >= '3.12' --hash={HASH_B}\n"
    )

    with pytest.raises(UnpinnedRequirementError, match=r"requirements.txt:2: numpy is pinned at 2.4.6 and 2.5.5"):
        read_pins(forked)
    assert read_pins(LOCK_PATH)["pydantic-core"] == "2.50.5"
