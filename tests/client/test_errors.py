"""Each failure is its own NnqError subclass with the message and fields to fix; only calls
that are safe to repeat are retried, and the count is observable (``transport.attempts``)."""

from __future__ import annotations

import pytest

from nnq import (
    ApiUnreachable,
    Client,
    Conflict,
    NnqError,
    NotFound,
    PayloadTooLarge,
    SpecError,
    Unauthorized,
    Unavailable,
)
from nnq.processes import free_port
from nnq.transport import BACKOFF_FACTOR, BACKOFF_MAX_SECONDS, BACKOFF_SECONDS, RETRIES
from tests.client.conftest import TINY_SPEC, spec

TOKEN = "s3cret"
DOWN_DATABASE = "postgresql+psycopg://nnq@127.0.0.1:1/nnq"  # nothing listens on port 1


def test_422_names_the_field(client):
    bad = spec(train={**TINY_SPEC["train"], "optimizer": {"type": "adam", "lr": -0.1}})
    with pytest.raises(SpecError) as caught:
        client.submit(bad)
    assert caught.value.status == 422 and caught.value.code == "validation_error"
    assert "train.optimizer.lr" in caught.value.paths
    assert "train.optimizer.lr" in str(caught.value)
    assert isinstance(caught.value, ValueError) and isinstance(caught.value, NnqError)
    assert client.transport.attempts == 1  # a POST without an Idempotency-Key: never retried


def test_404_409_413(client):
    with pytest.raises(NotFound, match="no job 999999"):
        client.job(999999)
    with pytest.raises(NotFound):
        client.metrics(999999)
    job = client.submit(spec())
    client.cancel(job.id)
    with pytest.raises(Conflict) as caught:
        client.cancel(job.id)
    assert caught.value.status == 409
    # a spec of 17 MiB is over the 16 MiB body limit
    with pytest.raises(PayloadTooLarge) as caught:
        client.submit(spec(name="x" * (17 * 2**20)))
    assert caught.value.status == 413


def test_401_without_the_token(serve, database_url, redis_url):
    url = serve({"NNQ_DATABASE_URL": database_url, "NNQ_BROKER_URL": redis_url,
                 "NNQ_API_TOKEN": TOKEN})
    with Client(url, token="") as anonymous:
        assert anonymous.jobs() == []  # reading needs no token
        with pytest.raises(Unauthorized) as caught:
            anonymous.submit(spec())
        assert caught.value.status == 401
    with Client(url, token=TOKEN) as allowed:
        assert allowed.submit(spec()).status == "queued"


def test_token_and_url_come_from_the_environment(serve, database_url, redis_url, monkeypatch):
    url = serve({"NNQ_DATABASE_URL": database_url, "NNQ_BROKER_URL": redis_url,
                 "NNQ_API_TOKEN": TOKEN})
    monkeypatch.setenv("NNQ_API_URL", url)
    monkeypatch.setenv("NNQ_API_TOKEN", TOKEN)
    with Client() as client:
        assert client.url == url and client.submit(spec()).id >= 1


def test_503_when_the_database_is_down_is_retried_then_raised(serve, redis_url):
    """A real app whose database is unreachable: GET /health answers 503 (no stub server)."""
    url = serve({"NNQ_DATABASE_URL": DOWN_DATABASE, "NNQ_BROKER_URL": redis_url})
    with Client(url, backoff=0.0) as client:
        with pytest.raises(Unavailable) as caught:
            client.health()
        assert caught.value.status == 503
        assert client.transport.attempts == RETRIES + 1


def test_unreachable_api_names_the_url_and_retries_only_safe_calls():
    url = f"http://127.0.0.1:{free_port()}"
    client = Client(url, backoff=0.0)
    with pytest.raises(ApiUnreachable) as caught:
        client.jobs()
    assert isinstance(caught.value, ConnectionError) and isinstance(caught.value, NnqError)
    assert url in str(caught.value) and caught.value.url == url
    assert client.transport.attempts == RETRIES + 1  # GET: retried

    client.transport.attempts = 0
    with pytest.raises(ApiUnreachable):
        client.submit(spec())
    assert client.transport.attempts == 1  # POST without a key: never repeated

    client.transport.attempts = 0
    with pytest.raises(ApiUnreachable):
        client.submit(spec(), idempotency_key="k")
    assert client.transport.attempts == RETRIES + 1  # POST with a key: safe to repeat

    client.transport.attempts = 0
    with pytest.raises(ApiUnreachable):
        client.set_alias("best", 1)
    assert client.transport.attempts == RETRIES + 1  # PUT: retried
    client.close()


def test_default_backoff_grows_and_is_capped():
    client = Client("http://127.0.0.1:9")
    delays = [client.transport.delay(n) for n in range(RETRIES)]
    assert delays == [min(BACKOFF_SECONDS * BACKOFF_FACTOR ** n, BACKOFF_MAX_SECONDS)
                      for n in range(RETRIES)]
    assert delays == sorted(delays) and delays[0] > 0
    client.close()
