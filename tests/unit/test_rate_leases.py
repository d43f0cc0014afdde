"""The arithmetic of rate-limit leases: how many tokens to ask for, how long they may be spent."""

from __future__ import annotations

from connectors.rate_leases import Lease, lease_ceiling, lease_life_s


def test_the_ceiling_is_a_share_of_the_limit_capped_and_never_below_one():
    assert lease_ceiling(100, 0.05, 50) == 5
    assert lease_ceiling(10_000_000, 0.05, 50) == 50
    assert lease_ceiling(5, 0.05, 50) == 1  # a small limit: every request counted in Redis
    assert lease_ceiling(100, 0.0, 50) == 1


def test_a_lease_lives_a_share_of_the_period():
    assert lease_life_s(1, 0.1) == 0.1
    assert lease_life_s(3600, 0.1) == 360


def test_sizes_start_at_one_and_double_while_each_lease_is_spent():
    lease, now, sizes = Lease(ceiling=20, life_s=0.1), 0.0, []
    for _ in range(7):
        size = lease.next_size(now)
        sizes.append(size)
        lease.granted(size, now)
        while lease.take(now):
            pass
    assert sizes == [1, 2, 4, 8, 16, 20, 20]


def test_tokens_are_spent_once_and_never_after_the_lease_expires():
    lease = Lease(ceiling=10, life_s=0.1)
    lease.granted(4, now=5.0)  # this request spent one: three are left
    assert [lease.take(5.05) for _ in range(4)] == [True, True, True, False]
    lease.granted(4, now=6.0)
    assert lease.take(6.0999) is True
    assert lease.take(6.1) is False  # expired: its last two are never spent


def test_a_lease_that_expired_unspent_is_followed_by_one_of_what_it_used():
    lease = Lease(ceiling=10, life_s=0.1)
    lease.granted(8, now=0.0)
    lease.take(0.01)
    lease.take(0.02)
    assert lease.next_size(1.0) == 3  # this request's token and the two spent


def test_a_refused_lease_means_single_tokens_for_a_lease_s_life():
    lease = Lease(ceiling=10, life_s=0.1)
    lease.granted(8, now=0.0)
    for _ in range(7):
        lease.take(0.0)
    lease.refused(10, now=0.0)
    assert lease.next_size(0.05) == 1
    assert lease.next_size(0.2) == 10


def test_a_refused_single_token_is_refused_here_until_redis_frees_one():
    lease = Lease(ceiling=1, life_s=0.1)
    assert lease.refused_for(0.4, now=10.0) == 1
    assert lease.still_refused(10.1) == 1
    assert lease.still_refused(10.4) is None
    assert Lease(ceiling=1, life_s=60).refused_for(59.2, now=0.0) == 60


def test_while_redis_cannot_answer_a_lease_s_life_is_single_tokens():
    lease = Lease(ceiling=10, life_s=0.1)
    lease.unanswered(now=1.0)
    assert lease.exact(1.05) and lease.next_size(1.05) == 1
    assert not lease.exact(1.1)
