"""Reading sequence IDs: sources, comments, CSV columns, the function's validation rules, duplicates."""

from __future__ import annotations

import io
from typing import TYPE_CHECKING

import pytest

from sequence_archiver_cli.errors import UsageError
from sequence_archiver_cli.id_input import InputSources, RawValue, read_id_input, validate, values_from_lines

if TYPE_CHECKING:
    from pathlib import Path

pytestmark = pytest.mark.usefixtures("no_network")


def test_lines_skip_blanks_and_comments_and_keep_their_line_numbers() -> None:
    lines = ["# header comment\n", "101\n", "\n", "  102  # trailing note\n", "   \n", "103"]

    values = list(values_from_lines(lines, source="ids.txt"))

    assert values == [RawValue("ids.txt:2", "101"), RawValue("ids.txt:4", "102"), RawValue("ids.txt:6", "103")]


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("abc", "a sequence ID string must be 1 to 10 ASCII digits"),
        ("1.5", "a sequence ID must be a whole number, without a decimal point or exponent"),
        ("5.0", "a sequence ID must be a whole number, without a decimal point or exponent"),
        ("-4", "a sequence ID must be a positive whole number (1 to 2147483647), not negative"),
        ("+5", "a sequence ID string must be digits only, without a + sign"),
        ("١٢", "a sequence ID string must use the ASCII digits 0-9"),
        ("0", "a sequence ID must be a positive whole number (1 to 2147483647)"),
        ("2147483648", "a sequence ID must be at most 2147483647"),
        ("12345678901", "a sequence ID string must be at most 10 digits, not 11 (the largest is 2147483647)"),
        ("1/../../users", "a sequence ID string must be 1 to 10 ASCII digits"),
    ],
)
def test_values_are_validated_with_the_functions_rules(text: str, reason: str) -> None:
    result = validate([RawValue("argument 1", text)])

    assert result.sequence_ids == ()
    [rejected] = result.rejected
    assert (rejected.where, rejected.reason) == ("argument 1", reason)


def test_duplicates_are_dropped_keeping_input_order() -> None:
    values = [RawValue(f"argument {i}", text) for i, text in enumerate(["103", "101", "0103", "103", "102"])]

    result = validate(values)

    assert result.sequence_ids == (103, 101, 102)
    assert result.duplicates == 2
    assert result.values_read == 5


def test_sources_combine_arguments_stdin_files_and_a_csv_column(tmp_path: Path) -> None:
    ids_file = tmp_path / "ids.txt"
    ids_file.write_text("201\n# skip\n202\n", encoding="utf-8")
    csv_file = tmp_path / "export.csv"
    csv_file.write_text("\ufeffname,Sequence ID\nfirst,301\nsecond,\nthird,x1\n", encoding="utf-8")

    result = read_id_input(
        InputSources(arguments=["101", "-"], files=[str(ids_file)], csv_file=str(csv_file), csv_column="Sequence ID"),
        stdin=io.StringIO("102\n103\n"),
    )

    assert result.sequence_ids == (101, 102, 103, 201, 202, 301)
    [rejected] = result.rejected
    assert rejected.where == f"{csv_file}:4 (Sequence ID)"
    assert rejected.value == '"x1"'


def test_a_missing_csv_column_names_the_available_ones(tmp_path: Path) -> None:
    csv_file = tmp_path / "export.csv"
    csv_file.write_text("id,name\n1,a\n", encoding="utf-8")

    with pytest.raises(UsageError, match=r"has no column 'sequenceId'; available columns: 'id', 'name'"):
        read_id_input(InputSources(csv_file=str(csv_file), csv_column="sequenceId"), stdin=io.StringIO())


@pytest.mark.parametrize("content", ["", "\n\n# only comments\n"])
def test_an_input_without_any_value_is_a_usage_error(tmp_path: Path, content: str) -> None:
    empty = tmp_path / "empty.txt"
    empty.write_text(content, encoding="utf-8")

    with pytest.raises(UsageError, match="no sequence IDs in the input"):
        read_id_input(InputSources(files=[str(empty)]), stdin=io.StringIO())


def test_an_unreadable_file_is_a_usage_error_naming_it(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match=r"cannot read .*missing\.txt: No such file or directory"):
        read_id_input(InputSources(files=[str(tmp_path / "missing.txt")]), stdin=io.StringIO())


def test_stdin_can_be_read_only_once() -> None:
    with pytest.raises(UsageError, match="stdin"):
        read_id_input(InputSources(arguments=["-"], files=["-"]), stdin=io.StringIO("1\n"))
