"""The suite's leak check (tests/conftest.py) still fails a test that leaks a socket.

The check collects only what each test created (``gc.freeze()`` sets older objects aside) and
does a full collection after each module. These tests run a small pytest session in a child
process with the suite's own conftest and warning filter, and look at what it reports.
"""

from __future__ import annotations

from pathlib import Path

import pytest

CONFTEST = Path(__file__).with_name("conftest.py")

LEAKY = """
import socket

import pytest


class Cycle:
    '''A socket only the cyclic garbage collector can free: the object refers to itself.'''

    def __init__(self) -> None:
        self.me = self
        self.sock = socket.socket()


def test_clean() -> None:
    with socket.socket() as sock:
        assert sock.fileno() >= 0


def test_leaks_a_socket_in_a_cycle() -> None:
    Cycle()


def test_clean_after_the_leak() -> None:
    with socket.socket() as sock:  # the leak above is not held against this test
        assert sock.fileno() >= 0
"""

MODULE_FIXTURE = """
import socket

import pytest


class Cycle:
    def __init__(self) -> None:
        self.me = self
        self.sock = socket.socket()


@pytest.fixture(scope="module")
def shared() -> Cycle:
    # made before the first test ends, so the per-test collections have set it aside
    return Cycle()


def test_one(shared: Cycle) -> None:
    assert shared.sock.fileno() >= 0


def test_two(shared: Cycle) -> None:
    assert shared.sock.fileno() >= 0
"""

NEXT_MODULE = """
import socket


def test_three() -> None:
    with socket.socket() as sock:
        assert sock.fileno() >= 0
"""


def run(pytester: pytest.Pytester, *sources: str) -> pytest.RunResult:
    pytester.makeconftest(CONFTEST.read_text())
    pytester.makeini("[pytest]\nfilterwarnings =\n    error\n")
    pytester.makepyfile(**{f"test_{i}": source for i, source in enumerate(sources)})
    # a child process: the check freezes and collects this interpreter's garbage collector
    return pytester.runpytest_subprocess("-p", "no:cacheprovider", "-p", "no:xdist")


def test_a_socket_leaked_in_a_cycle_fails_that_test(pytester: pytest.Pytester) -> None:
    result = run(pytester, LEAKY)
    result.assert_outcomes(passed=3, errors=1)
    result.stdout.fnmatch_lines(["*ERROR at teardown of test_leaks_a_socket_in_a_cycle*"])
    result.stdout.fnmatch_lines(["*ResourceWarning: unclosed <socket.socket*"])


def test_a_socket_leaked_by_a_module_fixture_fails_the_next_module(
    pytester: pytest.Pytester,
) -> None:
    result = run(pytester, MODULE_FIXTURE, NEXT_MODULE)
    result.assert_outcomes(passed=2, errors=1)
    result.stdout.fnmatch_lines(["*ERROR at setup of test_three*"])
    result.stdout.fnmatch_lines(["*ResourceWarning: unclosed <socket.socket*"])
