"""Bulk writes for rebuilding the store (the StoreWriter port) and for the live sinks' batches (the
SinkWriter port): the SDK's multi-operations.

The SDK sends a batch's operations together from its C++ core, about three
times the rate of one awaited upsert after another from Python, so a rebuild
uses the synchronous API's `*_multi` calls, each in a worker thread so the
event loop stays free. A payment is written with insert (the usual case after a
wipe: one round trip); where the document exists it is read and replaced, under
its CAS, only by a newer version, so a replay never takes a payment back. A
user's index document gets the ids it lacks the same way (read, merged,
replaced under its CAS; inserted where missing): the SDK has no multi-operation
for the sub-document write the sinks use, and a CAS conflict with them is simply
read again. Every document is the one the sinks write (connectors/couchbase_store.py).
The live sinks' batches (`upsert_*`, `SinkBatchWriter`) are plain upserts, as
their writes one at a time are: a batch written again writes the same documents.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from datetime import timedelta

from couchbase.auth import PasswordAuthenticator
from couchbase.cluster import Cluster
from couchbase.exceptions import CasMismatchException, DocumentExistsException, DocumentNotFoundException
from couchbase.options import ClusterOptions, ReplaceOptions

from connectors.couchbase_store import (
    CouchbaseStore,
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

CAS_RETRIES = 5


class CouchbaseBulkWriter:
    def __init__(self, cluster: Cluster, bucket: str) -> None:
        self.cluster = cluster
        self.collection = cluster.bucket(bucket).default_collection()

    @classmethod
    async def connect(cls, settings: Settings) -> CouchbaseBulkWriter:
        def connect() -> CouchbaseBulkWriter:
            cluster = Cluster(settings.couchbase_connstr, ClusterOptions(PasswordAuthenticator(
                settings.couchbase_username, settings.couchbase_password.get_secret_value())))
            cluster.wait_until_ready(timedelta(seconds=30))
            return cls(cluster, settings.couchbase_bucket)

        return await asyncio.to_thread(connect)

    async def close(self) -> None:
        await asyncio.to_thread(self.cluster.close)

    # --- the StoreWriter port --------------------------------------------------------
    async def write_payments(self, payments: list[Payment]) -> int:
        return await asyncio.to_thread(self._write_newer, {payment_key(p.payment_id): p for p in payments})

    async def write_transactions(self, refs: dict[str, TransactionRef]) -> int:
        return await asyncio.to_thread(self._insert_once, {
            transaction_key(txn): {"payment_id": ref.payment_id, "user_id": ref.user_id, "account": ref.account}
            for txn, ref in refs.items()})

    async def write_receipts(self, receipts: list[Receipt]) -> int:
        return await asyncio.to_thread(self._insert_once, {
            receipt_key(r.receipt_id): r.model_dump(mode="json") for r in receipts})

    async def write_user_index(self, entries: dict[tuple[str, str, str], dict[str, str]]) -> int:
        return await asyncio.to_thread(self._merge_index, {
            user_index_key(kind, account, user): ids for (kind, account, user), ids in entries.items() if ids})

    async def write_data_keys(self, keys: dict[tuple[str, str], bytes | None]) -> int:
        def write() -> int:
            kept = {data_key_key(a, u): data_key_document(k, journaled=True) for (a, u), k in keys.items() if k}
            gone = [data_key_key(a, u) for (a, u), k in keys.items() if k is None]
            written = self._insert_once(kept)
            if gone:
                result = self.collection.remove_multi(gone, return_exceptions=True)
                _raise_unexpected(result.exceptions, DocumentNotFoundException)
                written += len(result.results)
            return written

        return await asyncio.to_thread(write)

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

    # --- the live sinks' batches: upserts, as their one-at-a-time writes ----------------
    # The documents are built in the worker thread too: the event loop only hands the batch over.
    async def upsert_payments(self, payments: Sequence[Payment]) -> None:
        await asyncio.to_thread(lambda: self._upsert("payment", {payment_key(p.payment_id): p.as_dict()
                                                                 for p in payments}))

    async def upsert_receipts(self, receipts: Sequence[Receipt]) -> None:
        await asyncio.to_thread(lambda: self._upsert("receipt", {receipt_key(r.receipt_id): r.model_dump(mode="json")
                                                                 for r in receipts}))

    async def upsert_transactions(self, refs: dict[str, TransactionRef]) -> None:
        await asyncio.to_thread(lambda: self._upsert("transaction", {
            transaction_key(txn): {"payment_id": ref.payment_id, "user_id": ref.user_id, "account": ref.account}
            for txn, ref in refs.items()}))

    def _upsert(self, document: str, docs: dict[str, dict]) -> None:
        if docs:
            started = time.perf_counter()
            result = self.collection.upsert_multi(docs, return_exceptions=True)
            if result.exceptions:
                metrics.COUCHBASE_WRITE_ERRORS.labels(document).inc(len(result.exceptions))
            _raise_unexpected(result.exceptions)
            # Each document was written within the call's time: one observation per document, as when
            # they are written one at a time.
            took = time.perf_counter() - started
            for _ in result.results:
                metrics.COUCHBASE_WRITE_LATENCY.labels(document).observe(took)

    # --- the writes -------------------------------------------------------------------
    def _insert_once(self, docs: dict[str, dict]) -> int:
        """Documents that never change once written (receipts, transaction ids): insert, keep what exists."""
        if not docs:
            return 0
        result = self.collection.insert_multi(docs, return_exceptions=True)
        _raise_unexpected(result.exceptions, DocumentExistsException)
        return len(result.results)

    def _write_newer(self, payments: dict[str, Payment]) -> int:
        written = 0
        pending = payments
        for _ in range(CAS_RETRIES):
            if not pending:
                return written
            result = self.collection.insert_multi({k: p.as_dict() for k, p in pending.items()},
                                                  return_exceptions=True)
            _raise_unexpected(result.exceptions, DocumentExistsException)
            written += len(result.results)
            existing = [k for k in pending if k in result.exceptions]
            if not existing:
                return written
            found = self.collection.get_multi(existing, return_exceptions=True)
            _raise_unexpected(found.exceptions, DocumentNotFoundException)
            newer = {k: found.results[k].cas for k in existing
                     if k in found.results and found.results[k].content_as[dict].get("version", 0) < pending[k].version}
            gone = {k: pending[k] for k in existing if k not in found.results}  # removed meanwhile: insert again
            replaced = self.collection.replace_multi(
                {k: pending[k].as_dict() for k in newer},
                per_key_options={k: ReplaceOptions(cas=cas) for k, cas in newer.items()}, return_exceptions=True,
            ) if newer else None
            if replaced is not None:
                _raise_unexpected(replaced.exceptions, CasMismatchException, DocumentNotFoundException)
                written += len(replaced.results)
            # Changed under us (the live sinks wrote it): read it again and compare again.
            pending = {**gone, **{k: pending[k] for k in (replaced.exceptions if replaced else {})}}
        raise RuntimeError(f"{len(pending)} payment documents kept changing during the rebuild")

    def _merge_index(self, entries: dict[str, dict[str, str]]) -> int:
        """Add each index document's missing ids; return how many ids were added."""
        added = 0
        pending = entries
        for _ in range(CAS_RETRIES):
            if not pending:
                return added
            found = self.collection.get_multi(list(pending), return_exceptions=True)
            _raise_unexpected(found.exceptions, DocumentNotFoundException)
            fresh = {k: ids for k, ids in pending.items() if k not in found.results}
            merged: dict[str, tuple[dict, int, int]] = {}  # key: (document, cas, ids added)
            for k, result in found.results.items():
                held = result.content_as[dict]
                ids = held.get("ids", {})
                lacking = {i: at for i, at in pending[k].items() if ids.get(i) != at}
                if lacking:
                    merged[k] = ({**held, "ids": {**ids, **lacking}}, result.cas, len(lacking))
            retry: dict[str, dict[str, str]] = {}
            if fresh:
                inserted = self.collection.insert_multi({k: {"ids": ids} for k, ids in fresh.items()},
                                                        return_exceptions=True)
                _raise_unexpected(inserted.exceptions, DocumentExistsException)
                added += sum(len(fresh[k]) for k in inserted.results)
                retry |= {k: fresh[k] for k in inserted.exceptions}  # the sinks made it meanwhile
            if merged:
                replaced = self.collection.replace_multi(
                    {k: doc for k, (doc, _, _) in merged.items()},
                    per_key_options={k: ReplaceOptions(cas=cas) for k, (_, cas, _) in merged.items()},
                    return_exceptions=True)
                _raise_unexpected(replaced.exceptions, CasMismatchException, DocumentNotFoundException)
                added += sum(merged[k][2] for k in replaced.results)
                retry |= {k: pending[k] for k in replaced.exceptions}  # changed under us: merge again
            pending = retry
        raise RuntimeError(f"{len(pending)} user index documents kept changing during the rebuild")


class SinkBatchWriter:
    """The SinkWriter port: a batch's documents through the multi-operations above (measured at two to
    three times the rate of as many concurrent async upserts), users' index ids through the async store's
    sub-document writes (the SDK has no multi-operation for those)."""

    def __init__(self, bulk: CouchbaseBulkWriter, store: CouchbaseStore) -> None:
        self.bulk = bulk
        self.store = store

    async def upsert_payments(self, payments: Sequence[Payment]) -> None:
        await self.bulk.upsert_payments(payments)

    async def upsert_receipts(self, receipts: Sequence[Receipt]) -> None:
        await self.bulk.upsert_receipts(receipts)

    async def upsert_transactions(self, refs: dict[str, TransactionRef]) -> None:
        await self.bulk.upsert_transactions(refs)

    async def index_for_users(self, entries: dict[tuple[str, str, str], dict[str, str]]) -> None:
        await self.store.index_for_users(entries)


def _raise_unexpected(exceptions: dict, *expected: type[Exception]) -> None:
    for exc in exceptions.values():
        if not isinstance(exc, expected):
            raise exc
