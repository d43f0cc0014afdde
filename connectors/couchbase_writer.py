"""The one writer of the store's documents (the StoreWriter port): the live sinks' batches, the store
rebuild and single writes (a batch of one) all go through `CouchbaseWriter`.

Documents are written with the SDK's multi-operations, which send a batch's
operations together from its C++ core (two to three times the rate of as many
awaited async upserts), each call in a worker thread so the event loop stays
free. An older version of a payment never replaces a newer one: a payment is
inserted where the store has none, and otherwise replaced under the CAS of the
version it holds, only by a newer version. The CAS of each payment this writer
last wrote or read is remembered (a bounded memo), so the usual live write, the
next version of a payment it wrote a moment ago, is one replace; a CAS that
changed meanwhile (another writer: a replay, the sinks of another process) is read
again and compared again. Receipts and transaction ids never change once
written: inserted, an existing one kept. Users' indexes get ids through
sub-document upserts of the async SDK (it has no multi-operation for them), at
most `MUTATE_IN_MAX_SPECS` ids a write, a batch's documents together; an upsert
writes the same id again harmlessly, so nothing there needs guarding.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections import OrderedDict
from datetime import timedelta

from acouchbase.cluster import Cluster as AsyncCluster
from couchbase.auth import PasswordAuthenticator
from couchbase.cluster import Cluster
from couchbase.exceptions import (
    AmbiguousTimeoutException,
    CasMismatchException,
    DocumentExistsException,
    DocumentNotFoundException,
    InternalServerFailureException,
    PathMismatchException,
    TemporaryFailException,
    UnAmbiguousTimeoutException,
)
from couchbase.options import ClusterOptions, MutateInOptions, ReplaceOptions
from couchbase.subdocument import StoreSemantics
from couchbase.subdocument import upsert as subdoc_upsert
from tenacity import AsyncRetrying, retry_if_exception_type, stop_after_attempt, wait_exponential_jitter

from connectors.couchbase_store import (
    data_key_document,
    data_key_key,
    marker_key,
    payment_key,
    receipt_key,
    transaction_key,
    user_index_key,
)
from paystream.domain.model import Payment
from paystream.domain.records import Receipt
from paystream.observability import metrics
from paystream.ports import TransactionRef
from paystream.settings import Settings

#: Rounds of read-compare-replace before a payment whose CAS keeps changing is given up on (the caller retries).
CAS_RETRIES = 5
#: Tries of one index write that met a transient store failure (it is idempotent).
INDEX_WRITE_ATTEMPTS = 4
#: What an index write may meet and succeed on a later try.
INDEX_WRITE_TRANSIENT = (InternalServerFailureException, TemporaryFailException,
                         UnAmbiguousTimeoutException, AmbiguousTimeoutException)
#: The most sub-document operations one mutate_in may carry (a Couchbase limit).
MUTATE_IN_MAX_SPECS = 16
#: Payments whose CAS the writer remembers: a few batches' worth is all the fast path needs.
HELD_MAX = 100_000


class CouchbaseWriter:
    def __init__(self, cluster: Cluster, index_cluster: AsyncCluster, bucket: str) -> None:
        self.cluster = cluster
        self.index_cluster = index_cluster
        self.collection = cluster.bucket(bucket).default_collection()
        self.index_collection = index_cluster.bucket(bucket).default_collection()
        #: Per payment document: (its CAS, the version it holds), as this writer last wrote or read it.
        self._held: OrderedDict[str, tuple[int, int]] = OrderedDict()
        #: The memo is read and written from worker threads (a rebuild may write beside the sinks).
        self._lock = threading.Lock()

    @classmethod
    async def connect(cls, settings: Settings) -> CouchbaseWriter:
        options = ClusterOptions(PasswordAuthenticator(settings.couchbase_username,
                                                       settings.couchbase_password.get_secret_value()))

        def connect() -> Cluster:
            cluster = Cluster(settings.couchbase_connstr, options)
            cluster.wait_until_ready(timedelta(seconds=30))
            return cluster

        cluster = await asyncio.to_thread(connect)
        index_cluster = await AsyncCluster.connect(settings.couchbase_connstr, options)
        await index_cluster.wait_until_ready(timedelta(seconds=30))
        return cls(cluster, index_cluster, settings.couchbase_bucket)

    async def close(self) -> None:
        await self.index_cluster.close()
        await asyncio.to_thread(self.cluster.close)

    # --- documents ----------------------------------------------------------------
    async def write_payments(self, payments: list[Payment]) -> int:
        """Each payment unless the store holds the same or a newer version; how many were written.
        Written whole in one worker thread: the event loop only hands the batch over."""
        if not payments:
            return 0
        started = time.perf_counter()
        written, failed = await asyncio.to_thread(self._write_newer, payments)
        if failed:
            metrics.COUCHBASE_WRITE_ERRORS.labels("payment").inc(len(failed))
            raise failed[0]
        took = time.perf_counter() - started
        for _ in range(written):
            metrics.COUCHBASE_WRITE_LATENCY.labels("payment").observe(took)
        return written

    def _write_newer(self, payments: list[Payment]) -> tuple[int, list[Exception]]:
        """(written, failed unexpectedly): rounds of insert (unknown documents) and replace under the CAS
        held (known ones), then a read of the documents written by someone else meanwhile; the next
        round replaces each under the CAS read if ours is newer, inserts it if it is gone, and leaves it
        if it is not older."""
        written = 0
        pending = {payment_key(p.payment_id): p for p in payments}
        for _ in range(CAS_RETRIES):
            if not pending:
                return written, []
            with self._lock:
                replace = {k: self._held[k][0] for k, p in pending.items()
                           if k in self._held and self._held[k][1] < p.version}
            conflicts = []
            for keys, call, expected in (
                ([k for k in pending if k not in replace], lambda keys: self.collection.insert_multi(
                    {k: pending[k].as_dict() for k in keys}, return_exceptions=True), DocumentExistsException),
                (list(replace), lambda keys: self.collection.replace_multi(
                    {k: pending[k].as_dict() for k in keys},
                    per_key_options={k: ReplaceOptions(cas=replace[k]) for k in keys}, return_exceptions=True),
                 (CasMismatchException, DocumentNotFoundException)),
            ):
                if not keys:
                    continue
                result = call(keys)
                unexpected = _unexpected(result.exceptions, expected)
                if unexpected:
                    return written, unexpected
                with self._lock:
                    for k, done in result.results.items():
                        self._hold(k, done.cas, pending[k].version)
                written += len(result.results)
                conflicts += list(result.exceptions)
            pending = {k: pending[k] for k in conflicts}
            if pending:
                found = self.collection.get_multi(list(pending), return_exceptions=True)
                _raise_unexpected(found.exceptions, DocumentNotFoundException)
                with self._lock:
                    for k in list(pending):
                        if k not in found.results:
                            self._held.pop(k, None)
                            continue
                        version = found.results[k].content_as[dict].get("version", 0)
                        self._hold(k, found.results[k].cas, version)
                        if version >= pending[k].version:
                            del pending[k]
        if pending:
            raise RuntimeError(f"{len(pending)} payment documents kept changing while being written")
        return written, []

    async def write_receipts(self, receipts: list[Receipt]) -> int:
        if not receipts:
            return 0
        return await self._insert_once("receipt", lambda: {
            receipt_key(r.receipt_id): r.model_dump(mode="json") for r in receipts})

    async def write_transactions(self, refs: dict[str, TransactionRef]) -> int:
        if not refs:
            return 0
        return await self._insert_once("transaction", lambda: {
            transaction_key(txn): {"payment_id": ref.payment_id, "user_id": ref.user_id, "account": ref.account}
            for txn, ref in refs.items()})

    async def write_user_index(self, entries: dict[tuple[str, str, str], dict[str, str]]) -> int:
        """Add ids to users' indexes, {(kind, account, user): {id: created_at}}: one sub-document write per
        index document for its ids (in chunks of the most one write takes), keeping the ids it holds."""
        async def one_index(key: str, items: list[tuple[str, str]]) -> None:
            # One document's chunks one after another: two writes creating the same document at once
            # can fail on the store's side (seen on a rebuild of users with many ids).
            for i in range(0, len(items), MUTATE_IN_MAX_SPECS):
                await self._index(key, items[i:i + MUTATE_IN_MAX_SPECS])

        writes = [one_index(user_index_key(kind, account, user_id), list(ids.items()))
                  for (kind, account, user_id), ids in entries.items() if ids]
        # Every write runs to its end before the first failure is raised: the caller retries the lot.
        for outcome in await asyncio.gather(*writes, return_exceptions=True):
            if isinstance(outcome, BaseException):
                raise outcome
        return sum(len(ids) for ids in entries.values())

    async def write_data_keys(self, keys: dict[tuple[str, str], bytes | None]) -> int:
        """Put back users' data keys (a rebuild): a key the store holds is kept; None removes a forgotten user's."""
        def write() -> int:
            kept = {data_key_key(a, u): data_key_document(k, journaled=True) for (a, u), k in keys.items() if k}
            gone = [data_key_key(a, u) for (a, u), k in keys.items() if k is None]
            written = 0
            if kept:
                result = self.collection.insert_multi(kept, return_exceptions=True)
                _raise_unexpected(result.exceptions, DocumentExistsException)
                written += len(result.results)
            if gone:
                result = self.collection.remove_multi(gone, return_exceptions=True)
                _raise_unexpected(result.exceptions, DocumentNotFoundException)
                written += len(result.results)
            return written

        return await asyncio.to_thread(write)

    # --- the markers: how far the store holds each topic partition ------------------------
    async def applied_offsets(self, names: list[str]) -> dict[str, int | None]:
        def read() -> dict[str, int | None]:
            if not names:
                return {}
            result = self.collection.get_multi([marker_key(n) for n in names], return_exceptions=True)
            _raise_unexpected(result.exceptions, DocumentNotFoundException)
            return {n: (result.results[marker_key(n)].content_as[dict]["offset"]
                        if marker_key(n) in result.results else None) for n in names}

        return await asyncio.to_thread(read)

    async def set_applied_offsets(self, offsets: dict[str, int]) -> None:
        def write() -> None:
            if offsets:
                result = self.collection.upsert_multi({marker_key(n): {"offset": o} for n, o in offsets.items()},
                                                      return_exceptions=True)
                _raise_unexpected(result.exceptions)

        await asyncio.to_thread(write)

    # --- the writes -------------------------------------------------------------------
    def _hold(self, key: str, cas: int, version: int) -> None:
        self._held[key] = (cas, version)
        self._held.move_to_end(key)
        if len(self._held) > HELD_MAX:
            self._held.popitem(last=False)

    async def _insert_once(self, document: str, docs) -> int:
        """Documents that never change once written: insert, keep what exists. `docs` builds them in the
        worker thread (the event loop only hands the batch over). Metrics: one latency per document
        written (each within the call's time), one error per unexpected failure."""
        started = time.perf_counter()
        result = await asyncio.to_thread(lambda: self.collection.insert_multi(docs(), return_exceptions=True))
        took = time.perf_counter() - started
        failed = _unexpected(result.exceptions, DocumentExistsException)
        if failed:
            metrics.COUCHBASE_WRITE_ERRORS.labels(document).inc(len(failed))
            raise failed[0]
        for _ in result.results:
            metrics.COUCHBASE_WRITE_LATENCY.labels(document).observe(took)
        return len(result.results)

    async def _index(self, key: str, ids: list[tuple[str, str]]) -> None:
        started = time.perf_counter()

        async def add() -> None:
            await self.index_collection.mutate_in(
                key, [subdoc_upsert(f"ids.{object_id}", created_at, create_parents=True)
                      for object_id, created_at in ids],
                MutateInOptions(store_semantics=StoreSemantics.UPSERT))

        async def add_or_create() -> None:
            try:
                await add()
            except PathMismatchException:
                # A document removed earlier takes no sub-document write that creates it again on the
                # local cluster (gocaves); inserted whole instead, or, made meanwhile, added to.
                try:
                    await self.index_collection.insert(key, {"ids": dict(ids)})
                except DocumentExistsException:
                    await add()

        try:
            # Two writers adding to one index document at once (the live sinks and a rebuild, say) can get
            # a transient failure from the store (seen: InternalServerFailure during `store rebuild`), and a
            # loaded machine can hold a write past its timeout (seen in CI: an UnAmbiguousTimeout never
            # dispatched). The write is idempotent (the same ids, the same values), so it is tried again.
            async for attempt in AsyncRetrying(
                    retry=retry_if_exception_type(INDEX_WRITE_TRANSIENT),
                    stop=stop_after_attempt(INDEX_WRITE_ATTEMPTS), wait=wait_exponential_jitter(multiplier=0.05, max=1.0, jitter=0.05),
                    reraise=True):
                with attempt:
                    await add_or_create()
        except Exception:
            metrics.COUCHBASE_WRITE_ERRORS.labels("user_index").inc()
            raise
        metrics.COUCHBASE_WRITE_LATENCY.labels("user_index").observe(time.perf_counter() - started)


def _unexpected(exceptions: dict, expected) -> list[Exception]:
    return [exc for exc in exceptions.values() if not isinstance(exc, expected)]


def _raise_unexpected(exceptions: dict, *expected: type[Exception]) -> None:
    for exc in exceptions.values():
        if not isinstance(exc, expected):
            raise exc
