"""The users' index write tries again after a transient store failure (it is idempotent), and only then."""

from __future__ import annotations

import asyncio

import pytest
from couchbase.exceptions import (
    InternalServerFailureException,
    PathMismatchException,
    TemporaryFailException,
    UnAmbiguousTimeoutException,
)

from connectors.couchbase_writer import INDEX_WRITE_ATTEMPTS, CouchbaseWriter


class IndexCollection:
    """A collection whose sub-document writes fail with the given errors first, then succeed."""

    def __init__(self, failures: list[Exception]) -> None:
        self.failures = failures
        self.writes: list[str] = []

    async def mutate_in(self, key, specs, options) -> None:
        self.writes.append(key)
        if self.failures:
            raise self.failures.pop(0)


class Cluster:
    def __init__(self, collection) -> None:
        self.collection = collection

    def bucket(self, name):
        return self

    def default_collection(self):
        return self.collection


def writer(collection: IndexCollection) -> CouchbaseWriter:
    return CouchbaseWriter(Cluster(None), Cluster(collection), "paystream")


@pytest.mark.parametrize("transient", [InternalServerFailureException, TemporaryFailException,
                                       UnAmbiguousTimeoutException])
def test_a_transient_failure_is_tried_again_until_the_write_is_taken(transient):
    collection = IndexCollection([transient(), transient()])
    written = asyncio.run(writer(collection).write_user_index({("payments", "acct", "u1"): {"pay_1": "t"}}))
    assert written == 1 and len(collection.writes) == 3


def test_a_failure_that_lasts_is_raised_after_the_last_attempt():
    collection = IndexCollection([InternalServerFailureException()] * (INDEX_WRITE_ATTEMPTS + 1))
    with pytest.raises(InternalServerFailureException):
        asyncio.run(writer(collection).write_user_index({("payments", "acct", "u1"): {"pay_1": "t"}}))
    assert len(collection.writes) == INDEX_WRITE_ATTEMPTS


def test_another_failure_is_not_tried_again():
    collection = IndexCollection([PathMismatchException(), ValueError("refused")])

    async def insert(key, value):
        raise ValueError("refused")

    collection.insert = insert
    with pytest.raises(ValueError):
        asyncio.run(writer(collection).write_user_index({("payments", "acct", "u1"): {"pay_1": "t"}}))
    assert len(collection.writes) == 1
