import time
import uuid

import redis


def test_set_get_with_ttl(stack):
    client = redis.Redis.from_url(stack["redis"]["address"])
    key = f"test:{uuid.uuid4()}"
    client.set(key, b"receipt", px=400)
    assert client.get(key) == b"receipt"
    assert 0 < client.pttl(key) <= 400
    deadline = time.monotonic() + 10
    while client.get(key) is not None:  # expired after its 400 ms (polled: how promptly is Redis's business)
        assert time.monotonic() < deadline, "the key outlived its TTL"
        time.sleep(0.05)
    assert client.config_get("appendonly") == {"appendonly": "yes"}
