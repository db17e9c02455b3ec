from crane.placement.fit import best_fit_nodes, fewest_nodes, hist_fits, pick_gpu_ids


def test_hist_fits_counts_whole_replicas_per_node() -> None:
    assert hist_fits({6: 2}, [4, 4])
    assert not hist_fits({6: 2}, [4, 4, 4])
    assert hist_fits({8: 1, 4: 1}, [4, 4, 4])
    assert not hist_fits({3: 4}, [4])


def test_hist_fits_mixed_sizes_uses_leftovers() -> None:
    assert hist_fits({8: 1}, [6, 2])
    assert not hist_fits({8: 1}, [6, 3])


def test_best_fit_prefers_tightest_node() -> None:
    cands = sorted([(8, "a"), (4, "b"), (6, "c")])
    assert best_fit_nodes(cands, [4]) == ["b"]
    assert best_fit_nodes(cands, [8, 4, 6]) == ["a", "c", "b"]
    assert best_fit_nodes(cands, [8, 8]) is None


def test_fewest_nodes_takes_largest_then_best_fit() -> None:
    cands = sorted([(8, "a"), (8, "b"), (3, "c"), (5, "d")])
    assert fewest_nodes(cands, 12) == [("a", 8), ("d", 4)]
    assert fewest_nodes(cands, 25) is None


def test_pick_ids_one_island_when_possible() -> None:
    islands = [(0, 1, 2, 3), (4, 5, 6, 7)]
    assert pick_gpu_ids(islands, [1, 2, 3, 4, 5, 6, 7], [], 3) == [1, 2, 3]
    assert pick_gpu_ids(islands, [0, 1, 2, 3, 4, 5, 6], [], 4) == [0, 1, 2, 3]
    assert pick_gpu_ids(islands, [2, 3, 4, 5, 6], [], 5) == [2, 3, 4, 5, 6]
    assert pick_gpu_ids(islands, range(8), [5], 1) == [5]
