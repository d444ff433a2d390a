"""One reconciler round per period for the whole fleet, claimed on the real broker."""

import threading
import time

from workers import reconcile

INTERVAL_S = 0.4


def test_the_first_claim_of_a_period_wins_and_the_next_period_is_free_again(redis_url):
    assert reconcile.claim_round(redis_url, INTERVAL_S, "host-a:1")
    assert not reconcile.claim_round(redis_url, INTERVAL_S, "host-b:2")
    time.sleep(INTERVAL_S * reconcile.ROUND_KEY_SHARE + 0.05)
    assert reconcile.claim_round(redis_url, INTERVAL_S, "host-b:2")


def test_an_unreachable_broker_lets_every_worker_run_its_own_round():
    assert reconcile.claim_round("redis://127.0.0.1:1/0", INTERVAL_S, "host-a:1")
    assert reconcile.claim_round("redis://127.0.0.1:1/0", INTERVAL_S, "host-b:2")


def test_loops_of_several_workers_run_about_one_round_per_period(database_url, redis_url,
                                                                   monkeypatch):
    """Three workers' loops for ten periods: about ten rounds, not thirty; the others only
    ping the database."""
    monkeypatch.setenv("NNQ_DATABASE_URL", database_url)
    monkeypatch.setenv("NNQ_BROKER_URL", redis_url)
    rounds, pings = [], []
    real_round, real_ping = reconcile.reconcile_once, reconcile.ping
    monkeypatch.setattr(reconcile, "reconcile_once",
                        lambda **kw: rounds.append(time.monotonic()) or real_round(**kw))
    monkeypatch.setattr(reconcile, "ping", lambda s: pings.append(1) or real_ping(s))
    loops, periods = 3, 10
    reconcile._stop.clear()
    threads = [threading.Thread(target=reconcile._loop, args=(INTERVAL_S, 60.0), daemon=True)
               for _ in range(loops)]
    for thread in threads:
        thread.start()
        time.sleep(INTERVAL_S / loops)  # spread over the period, as independent workers are
    time.sleep(periods * INTERVAL_S)
    reconcile._stop.set()
    for thread in threads:
        thread.join(timeout=10)
    attempts = len(rounds) + len(pings)
    assert attempts >= loops * periods * 0.8, (len(rounds), len(pings))
    assert 0.7 * periods <= len(rounds) <= 1.3 * periods + 2, (len(rounds), len(pings))
    gaps = [b - a for a, b in zip(rounds, rounds[1:])]
    assert min(gaps) >= INTERVAL_S * reconcile.ROUND_KEY_SHARE / 2, gaps  # never back to back
