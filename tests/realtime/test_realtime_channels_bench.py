"""The channel benchmarks' drivers run (the figures themselves come from callgrind runs)."""

from __future__ import annotations

import pytest

from benchmarks import inprocess_channels


@pytest.mark.parametrize(
    "argv",
    [
        ["roundtrip", "channels", "--count", "5"],
        ["roundtrip", "echo", "--count", "5"],
        ["fanout", "channels", "--count", "3", "--members", "4"],
        ["fanout", "hub", "--count", "3", "--members", "4"],
    ],
)
def test_drivers_make_their_runs(argv: list[str]) -> None:
    inprocess_channels.main(argv)


def test_a_scenario_compares_only_with_its_reference() -> None:
    with pytest.raises(SystemExit):
        inprocess_channels.main(["fanout", "echo", "--count", "1"])
