"""The audit export's text: spreadsheet formulas neutralised (CSV injection), times in UTC."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta, timezone

import pytest

from cardvault.services.audit.trail import csv_row, iso


@pytest.mark.parametrize(
    "cell",
    [
        "=1+1",
        "+44 20 7946 0000",
        "-2",
        "@SUM(A1)",
        "\tx",
        "\rx",
    ],
)
def test_a_cell_that_a_spreadsheet_would_run_is_quoted_as_text(cell: str) -> None:
    [row] = csv.reader(io.StringIO(csv_row(["card.locked", cell, 3]), newline=""))
    assert row == ["card.locked", "'" + cell, "3"]


def test_ordinary_cells_and_non_text_are_left_alone() -> None:
    line = csv_row(["a,b", 'say "hi"', None, 7, "x=1"])
    assert line.endswith("\n")
    [row] = csv.reader(io.StringIO(line, newline=""))
    assert row == ["a,b", 'say "hi"', "", "7", "x=1"]


def test_a_line_break_inside_a_cell_stays_inside_it() -> None:
    line = csv_row(["one\rtwo", "three\nfour", "five\r\nsix"])
    assert line.count("\n") == 3  # two inside quoted cells, one ending the line
    [row] = csv.reader(io.StringIO(line, newline=""))
    assert row == ["one\rtwo", "three\nfour", "five\r\nsix"]


def test_times_are_written_in_utc_with_microseconds() -> None:
    plus_two = timezone(timedelta(hours=2))
    assert iso(datetime(2026, 12, 7, 11, 0, 0, 5, tzinfo=plus_two)) == "2026-12-07T09:00:00.000005Z"
    assert iso(datetime(2026, 1, 1, tzinfo=UTC)) == "2026-01-01T00:00:00.000000Z"
