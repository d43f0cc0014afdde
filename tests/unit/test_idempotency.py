"""The ingress's Idempotency-Key (ingress/idempotency.py), against an in-memory cache: the same key and body
replay the first final answer, sealed to the caller's API key; another body is a 409; a key is scoped to its
account and endpoint; an answer still to come, or one kept for another key, is asked of the pipeline again."""

from __future__ import annotations

import json

import pytest
from aiohttp import web
from aiohttp.test_utils import make_mocked_request
from pydantic import BaseModel

from ingress import idempotency
from ingress.context import CONTEXT, Context
from paystream.domain.errors import InvalidRequest
from paystream.domain.sealing import ReplyKey, seal_personal
from tests.unit.fakes import KEY, RECEIPTED, MemoryCache, MemoryKeys


class Body(BaseModel):
    user_id: str
    amount: str


FIRST = Body(user_id="user-1", amount="10.00")


@pytest.fixture
def cache() -> MemoryCache:
    return MemoryCache()


@pytest.fixture
def request_with(cache):
    app = web.Application()
    app[CONTEXT] = Context(bus=None, cache=cache, store=None, table=None, keys=MemoryKeys(), api_keys=None,
                           limiter=None, settings=None, reply_key=ReplyKey())

    def make(key: str | None, account: str = "acct-1", api_key: str = "psk_one") -> web.Request:
        request = make_mocked_request("POST", "/v1/startPayment", app=app,
                                      headers={} if key is None else {"Idempotency-Key": key})
        request["account"], request["api_key"] = account, api_key
        return request

    return make


async def test_without_a_key_nothing_is_claimed(request_with, cache):
    assert await idempotency.claim(request_with(None), "start", FIRST) is None
    assert cache.idempotency == {}


@pytest.mark.parametrize("key", ["", "x" * 256, "tab\there"], ids=["empty", "too-long", "unprintable"])
async def test_a_malformed_key_is_a_structured_400(request_with, cache, key):
    with pytest.raises(InvalidRequest) as info:
        await idempotency.claim(request_with(key), "start", FIRST)
    assert (info.value.code, info.value.field) == ("invalid_idempotency_key", "Idempotency-Key")
    assert cache.idempotency == {}


async def test_the_first_use_claims_the_key_scoped_to_account_and_endpoint(request_with, cache):
    claimed = await idempotency.claim(request_with("order-1"), "start", FIRST)
    assert claimed == idempotency.Claim("acct-1:start:order-1")
    # The same key on another endpoint or of another account is another claim altogether.
    assert await idempotency.claim(request_with("order-1"), "post", FIRST) == idempotency.Claim("acct-1:post:order-1")
    other = await idempotency.claim(request_with("order-1", account="acct-2"), "start", FIRST)
    assert other == idempotency.Claim("acct-2:start:order-1")
    assert sorted(cache.idempotency) == ["acct-1:post:order-1", "acct-1:start:order-1", "acct-2:start:order-1"]


async def test_the_same_key_with_another_body_is_a_409(request_with):
    await idempotency.claim(request_with("order-1"), "start", FIRST)
    with pytest.raises(idempotency.IdempotencyConflict) as info:
        await idempotency.claim(request_with("order-1"), "start", Body(user_id="user-1", amount="10.01"))
    assert (info.value.type, info.value.code, info.value.field) == \
        ("idempotency_error", "idempotency_key_reused", "Idempotency-Key")


async def test_a_repeat_while_the_first_has_no_final_answer_goes_to_the_pipeline_again(request_with):
    first = await idempotency.claim(request_with("order-1"), "start", FIRST)
    # Still running (nothing remembered yet), or only accepted (a 202 is not kept): asked again.
    await idempotency.remember(request_with("order-1"), first, 202, {"payment_id": "pay-1"})
    again = await idempotency.claim(request_with("order-1"), "start", FIRST)
    assert again == first


async def test_a_final_answer_is_replayed_sealed_to_the_callers_api_key(request_with, cache):
    claimed = await idempotency.claim(request_with("order-1"), "start", FIRST)
    body = {"payment_id": "pay-1", "client_secret": "pi_1_secret_xyz"}
    await idempotency.remember(request_with("order-1"), claimed, 201, body)
    (_, stored), = cache.idempotency.values()
    assert b"pi_1_secret_xyz" not in stored  # kept sealed: the cache alone cannot read it

    replay = await idempotency.claim(request_with("order-1"), "start", FIRST)
    assert isinstance(replay, web.Response)
    assert (replay.status, replay.headers["Idempotent-Replayed"], json.loads(replay.body)) == (201, "true", body)
    # Another key of the same account cannot open it: its repeat is asked of the pipeline (ids derived
    # from the key make that a no-op there).
    assert await idempotency.claim(request_with("order-1", api_key="psk_two"), "start", FIRST) == claimed


async def test_a_decline_is_replayed_too_and_the_first_answer_stays(request_with):
    claimed = await idempotency.claim(request_with("order-1"), "post", FIRST)
    await idempotency.remember(request_with("order-1"), claimed, 402, {"error": {"code": "card_declined"}})
    await idempotency.remember(request_with("order-1"), claimed, 201, {"receipt_id": "rcpt_later"})
    replay = await idempotency.claim(request_with("order-1"), "post", FIRST)
    assert (replay.status, json.loads(replay.body)) == (402, {"error": {"code": "card_declined"}})


async def test_a_replayed_receipt_opens_its_email_with_the_users_key(request_with, cache):
    receipt = RECEIPTED.receipt().model_copy(
        update={"email_id": seal_personal(KEY, "a@example.com", "acct-1", "user-1")})
    claimed = await idempotency.claim(request_with("order-1"), "post", FIRST)
    await idempotency.remember(request_with("order-1"), claimed, 201, {}, receipt=receipt)
    replay = await idempotency.claim(request_with("order-1"), "post", FIRST)
    assert json.loads(replay.body) == receipt.model_dump(mode="json") | {"email_id": "a@example.com"}
