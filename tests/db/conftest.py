"""One session on the test's database, for the store tests."""

import pytest


@pytest.fixture
def session(sessions):
    with sessions() as s:
        yield s
