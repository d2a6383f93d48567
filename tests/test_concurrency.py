"""One Router shared by many threads, logging every decision: nothing lost, nothing different."""

from concurrent.futures import ThreadPoolExecutor

from router_ml import DecisionLog, Predictor, Router
from router_ml.data import load_rows


def test_eight_threads_by_a_thousand_routes_equal_serial_and_lose_no_rows(tiny_data, hash_embedder, tmp_path):
    rows = load_rows(tiny_data)
    predictor = Predictor(hash_embedder, cv=3).fit([r.request for r in rows], [r.tier for r in rows])
    requests = [r.raw for r in rows]
    serial = Router(predictor, llm=None, underroute_budget=0.2, confidence_threshold=0.5)
    expected = [(d.tier, d.source, round(d.confidence, 12)) for d in (serial.route(q) for q in requests)]

    log = DecisionLog(tmp_path / "routes.db", privacy="full")
    shared = Router(predictor, llm=None, underroute_budget=0.2, confidence_threshold=0.5, log=log)

    def worker(k: int):
        out = []
        for i in range(1000):
            j = (i * 7 + k) % len(requests)
            d = shared.route(requests[j])
            out.append((j, (d.tier, d.source, round(d.confidence, 12)), d.decision_id))
        return out

    with ThreadPoolExecutor(8) as pool:
        results = [x for chunk in pool.map(worker, range(8)) for x in chunk]

    assert len(results) == 8000
    assert all(got == expected[j] for j, got, _ in results)
    ids = [i for _, _, i in results]
    assert len(set(ids)) == 8000 and None not in ids
    assert log.count() == 8000
    logged = {r["id"]: r for r in log.rows()}
    assert set(logged) == set(ids)
    j, (tier, source, _), decision_id = results[123]
    assert logged[decision_id]["tier"] == tier.name and logged[decision_id]["source"] == source
    log.close()
