"""Payments, receipts, the transaction index, each user's index and personal-data keys read from
Couchbase (async SDK): the DocumentStore and DataKeyStore ports. The documents' keys and shapes are
here too; they are written by the one store writer (connectors/couchbase_writer.py).

Writes go to each document's active copy; receipt reads may be served by
any replica, as the design's read databases: eventual consistency is fine
for a receipt that, once written, never changes. Other reads go to the
active copy and, when its node cannot answer within the read timeout, to any
replica; when neither can, the read raises `Unavailable` (a 503 at the API).
Keys are built by `store_key` (ids of one strict charset joined by `::`), so
two objects never share one.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
from datetime import timedelta

from acouchbase.cluster import Cluster
from couchbase.auth import PasswordAuthenticator
from couchbase.exceptions import (
    CouchbaseException,
    DocumentExistsException,
    DocumentNotFoundException,
    DocumentUnretrievableException,
)
from couchbase.options import ClusterOptions, GetAnyReplicaOptions, GetOptions
from couchbase.subdocument import upsert as subdoc_upsert

from paystream.domain.errors import Unavailable
from paystream.domain.ids import store_key
from paystream.domain.model import Payment
from paystream.domain.records import Receipt
from paystream.observability import metrics
from paystream.observability.logs import get_logger
from paystream.ports import StoredDataKey, TransactionRef
from paystream.rebuild import marker_name
from paystream.settings import Settings

log = get_logger("paystream.store")

MARKER_PREFIX = "meta::applied::"


def _key(*parts: str) -> str:
    return store_key(*parts, separator="::")


def payment_key(payment_id: str) -> str:
    return _key("payment", payment_id)


def receipt_key(receipt_id: str) -> str:
    return _key("receipt", receipt_id)


def transaction_key(transaction_id: str) -> str:
    return _key("txn", transaction_id)


def user_index_key(kind: str, account: str, user_id: str) -> str:
    """`idx::payments::<account>::<user>`: {"ids": {id: created_at}}, what the list endpoints page through."""
    return _key("idx", kind, account, user_id)


def data_key_key(account: str, user_id: str) -> str:
    return _key("pii-key", account, user_id)


def marker_key(name: str) -> str:
    """`meta::applied::<topic>/<partition>`: {"offset": n}, below which the store holds everything."""
    return MARKER_PREFIX + name


class CouchbaseStore:
    def __init__(self, cluster: Cluster, bucket: str, read_timeout_s: float = 1.0, history_marker: str = "") -> None:
        self.cluster = cluster
        #: The marker whose presence says the store holds the topics' history (not wiped since).
        self.history_marker = history_marker
        self.collection = cluster.bucket(bucket).default_collection()
        self.read_timeout = timedelta(seconds=read_timeout_s)

    @classmethod
    async def connect(cls, settings: Settings) -> CouchbaseStore:
        cluster = await Cluster.connect(settings.couchbase_connstr, ClusterOptions(PasswordAuthenticator(
            settings.couchbase_username, settings.couchbase_password.get_secret_value())))
        await cluster.wait_until_ready(timedelta(seconds=30))
        return cls(cluster, settings.couchbase_bucket, settings.couchbase_read_timeout_s,
                   marker_name(settings.topics.events, 0))

    async def close(self) -> None:
        await self.cluster.close()

    # --- reads ----------------------------------------------------------------
    async def get_payment(self, payment_id: str) -> Payment | None:
        doc = await self._get(payment_key(payment_id))
        return Payment.from_dict(doc) if doc else None

    async def get_transaction(self, transaction_id: str) -> TransactionRef | None:
        doc = await self._get(transaction_key(transaction_id))
        return TransactionRef(doc["payment_id"], doc["user_id"], doc["account"]) if doc and "account" in doc else None

    async def user_index(self, kind: str, account: str, user_id: str) -> dict[str, str]:
        doc = await self._get(user_index_key(kind, account, user_id))
        return dict(doc.get("ids", {})) if doc else {}

    async def get_receipt(self, receipt_id: str) -> Receipt | None:
        doc = await self._get_any_replica(receipt_key(receipt_id))
        return Receipt.model_validate(doc) if doc else None

    async def _get(self, key: str) -> dict | None:
        try:
            return (await self.collection.get(key, GetOptions(timeout=self.read_timeout))).content_as[dict]
        except DocumentNotFoundException:
            return None
        except CouchbaseException as exc:
            # The active copy's node cannot answer (down, or failing over): a replica can.
            metrics.STORE_READ_ERRORS.labels("active").inc()
            log.warning("active copy unreadable, reading a replica", key=key, error=type(exc).__name__)
        return await self._get_any_replica(key)

    async def _get_any_replica(self, key: str) -> dict | None:
        try:
            result = await self.collection.get_any_replica(key, GetAnyReplicaOptions(timeout=self.read_timeout))
        except (DocumentUnretrievableException, DocumentNotFoundException):
            return None
        except CouchbaseException as exc:
            metrics.STORE_READ_ERRORS.labels("replica").inc()
            raise Unavailable("store_unavailable", "the document store cannot answer right now; "
                              "retry shortly") from exc
        return result.content_as[dict]

    # --- personal-data keys (the DataKeyStore port) --------------------------------
    async def data_key(self, account: str, user_id: str) -> StoredDataKey | None:
        doc = await self._get(data_key_key(account, user_id))
        return _stored_key(doc) if doc else None

    async def insert_data_key(self, account: str, user_id: str, key: bytes) -> StoredDataKey:
        try:
            await self.collection.insert(data_key_key(account, user_id), data_key_document(key, journaled=False))
        except DocumentExistsException:  # another ingress made the user's key first: theirs it is
            pass
        except CouchbaseException as exc:
            raise Unavailable("store_unavailable", "the document store cannot answer right now; "
                              "retry shortly") from exc
        stored = await self.data_key(account, user_id)
        if stored is None:  # forgotten in between
            raise Unavailable("store_unavailable", "the user's data key changed meanwhile; retry")
        return stored

    async def mark_journaled(self, account: str, user_id: str) -> None:
        try:
            await self.collection.mutate_in(data_key_key(account, user_id), [subdoc_upsert("journaled", True)])
        except DocumentNotFoundException:  # forgotten meanwhile: nothing to mark
            pass
        except CouchbaseException as exc:
            # A cluster going away mid-write (seen in the chaos run: RequestCanceled while the store was
            # wiped) is an outage, not a bug: a 503 the client retries, and the retry journals the key again.
            raise Unavailable("store_unavailable", "the document store cannot answer right now; "
                              "retry shortly") from exc

    async def remove_data_key(self, account: str, user_id: str) -> bool:
        try:
            await self.collection.remove(data_key_key(account, user_id))
            return True
        except DocumentNotFoundException:
            return False
        except CouchbaseException as exc:
            raise Unavailable("store_unavailable", "the document store cannot answer right now; "
                              "retry shortly") from exc

    async def holds_history(self) -> bool:
        return await self._get(marker_key(self.history_marker)) is not None


def data_key_document(key: bytes, journaled: bool) -> dict:
    return {"key": base64.b64encode(key).decode(), "journaled": journaled}


def _stored_key(doc: dict) -> StoredDataKey:
    return StoredDataKey(base64.b64decode(doc["key"]), bool(doc.get("journaled")))


class BackgroundConnectedStore:
    """The DocumentStore and DataKeyStore for the API: it starts without the cluster and connects
    in the background, retrying, so an API started while Couchbase is down serves what it can (status
    reads from the workers' table, cached receipts of remembered users) and answers 503 for the rest
    until the cluster is back."""

    RETRY_MAX_S = 30.0

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._store: CouchbaseStore | None = None
        self._connecting = asyncio.create_task(self._connect(), name="couchbase-connect")

    async def _connect(self) -> None:
        wait = 1.0
        while True:
            try:
                self._store = await CouchbaseStore.connect(self.settings)
                return
            except Exception as exc:  # whatever the SDK raises while the cluster is away
                log.warning("couchbase not reachable yet, retrying", error=type(exc).__name__, in_s=wait)
                await asyncio.sleep(wait)
                wait = min(wait * 2, self.RETRY_MAX_S)

    async def wait_connected(self, timeout_s: float) -> bool:
        """Whether the cluster was connected within `timeout_s` (it keeps trying either way)."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(self._connecting), timeout_s)
        return self._store is not None

    def _ready(self) -> CouchbaseStore:
        if self._store is None:
            raise Unavailable("store_unavailable", "the document store is not connected yet; retry shortly")
        return self._store

    async def get_payment(self, payment_id: str) -> Payment | None:
        return await self._ready().get_payment(payment_id)

    async def get_receipt(self, receipt_id: str) -> Receipt | None:
        return await self._ready().get_receipt(receipt_id)

    async def get_transaction(self, transaction_id: str) -> TransactionRef | None:
        return await self._ready().get_transaction(transaction_id)

    async def user_index(self, kind: str, account: str, user_id: str) -> dict[str, str]:
        return await self._ready().user_index(kind, account, user_id)

    async def data_key(self, account: str, user_id: str) -> StoredDataKey | None:
        return await self._ready().data_key(account, user_id)

    async def insert_data_key(self, account: str, user_id: str, key: bytes) -> StoredDataKey:
        return await self._ready().insert_data_key(account, user_id, key)

    async def mark_journaled(self, account: str, user_id: str) -> None:
        await self._ready().mark_journaled(account, user_id)

    async def remove_data_key(self, account: str, user_id: str) -> bool:
        return await self._ready().remove_data_key(account, user_id)

    async def holds_history(self) -> bool:
        return await self._ready().holds_history()

    async def close(self) -> None:
        self._connecting.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._connecting
        if self._store is not None:
            await self._store.close()
