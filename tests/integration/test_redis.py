import time
import uuid

import redis


def test_set_get_with_ttl(stack):
    client = redis.Redis.from_url(stack["redis"]["address"])
    key = f"test:{uuid.uuid4()}"
    client.set(key, b"receipt", px=400)
    assert client.get(key) == b"receipt"
    assert 0 < client.pttl(key) <= 400
    time.sleep(0.6)
    assert client.get(key) is None
    assert client.config_get("appendonly") == {"appendonly": "yes"}
