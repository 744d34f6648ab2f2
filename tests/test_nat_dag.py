"""The DA-Transformer's path dynamic programs against brute-force enumeration of every path."""

import itertools
import math

import pytest
import torch

from hf_nat.models.nat_dag import (
    dag_best_path,
    dag_log_likelihood,
    dag_lookahead_path,
    dag_path_output,
    dag_viterbi_path,
    dag_viterbi_paths,
)


def random_graph(generator, batch=3, graph=6, steps=4, dtype=torch.float32):
    """Log-normalised forward transitions and emissions, with per-row vertex and target counts."""
    transitions = torch.randn(batch, graph, graph, generator=generator, dtype=dtype)
    forward = torch.ones(graph, graph, dtype=torch.bool).triu(1)
    transitions = transitions.masked_fill(~forward, float("-inf")).log_softmax(-1).nan_to_num(neginf=-1e4)
    emissions = torch.randn(batch, graph, steps, generator=generator, dtype=dtype).log_softmax(1)
    lengths = torch.randint(1, steps + 1, (batch,), generator=generator)
    vertices = torch.stack([torch.randint(int(m), graph + 1, (1,), generator=generator)[0] for m in lengths])
    return transitions, emissions, vertices, lengths


def paths(vertices: int, length: int):
    """Every path 0 = a_1 < … < a_m = vertices - 1 of ``length`` vertices."""
    if length == 1:
        return [(0,)] if vertices == 1 else []
    return [(0, *middle, vertices - 1) for middle in itertools.combinations(range(1, vertices - 1), length - 2)]


def path_score(transitions, emissions, path):
    score = sum(float(emissions[a, t]) for t, a in enumerate(path))
    return score + sum(float(transitions[a, b]) for a, b in zip(path, path[1:]))


def brute_force(transitions, emissions, vertices, lengths):
    """(log-sum over paths, best score, best path) per row, by enumeration."""
    out = []
    for b in range(transitions.shape[0]):
        scored = [(path_score(transitions[b], emissions[b], p), p) for p in paths(int(vertices[b]), int(lengths[b]))]
        total = math.log(sum(math.exp(s) for s, _ in scored)) if scored else float("-inf")
        best = max(scored) if scored else (float("-inf"), ())
        out.append((total, best[0], best[1]))
    return out


@pytest.mark.parametrize("seed", range(40))
def test_sum_and_best_path_equal_brute_force(seed):
    generator = torch.Generator().manual_seed(seed)
    graph, steps = (
        int(torch.randint(1, 8, (1,), generator=generator)),
        int(torch.randint(1, 5, (1,), generator=generator)),
    )
    steps = min(steps, graph)
    transitions, emissions, vertices, lengths = random_graph(generator, graph=graph, steps=steps)
    total = dag_log_likelihood(transitions, emissions, vertices, lengths)
    best, path = dag_best_path(transitions, emissions, vertices, lengths)
    for b, (expected_total, expected_best, expected_path) in enumerate(
        brute_force(transitions, emissions, vertices, lengths)
    ):
        if expected_total == float("-inf"):  # one vertex, more tokens: no path (excluded by the checks)
            continue
        assert float(total[b]) == pytest.approx(expected_total, abs=1e-4)
        assert float(best[b]) == pytest.approx(expected_best, abs=1e-4)
        assert tuple(path[b, : lengths[b]].tolist()) == expected_path
        assert path[b, lengths[b] :].eq(-1).all()


def test_single_vertex_single_token_and_batch_invariance():
    generator = torch.Generator().manual_seed(3)
    transitions, emissions, vertices, lengths = random_graph(generator, batch=5, graph=7, steps=5)
    together = dag_log_likelihood(transitions, emissions, vertices, lengths)
    alone = torch.cat(
        [
            dag_log_likelihood(transitions[i : i + 1], emissions[i : i + 1], vertices[i : i + 1], lengths[i : i + 1])
            for i in range(5)
        ]
    )
    assert torch.allclose(together, alone)
    one = dag_log_likelihood(transitions[:1, :1, :1], emissions[:1, :1, :1], torch.tensor([1]), torch.tensor([1]))
    assert float(one[0]) == pytest.approx(float(emissions[0, 0, 0]))


def test_gradients_check_in_float64():
    generator = torch.Generator().manual_seed(0)
    transitions, emissions, vertices, lengths = random_graph(generator, batch=2, graph=5, steps=3, dtype=torch.float64)
    vertices, lengths = torch.tensor([5, 4]), torch.tensor([3, 2])
    forward = torch.ones(5, 5, dtype=torch.bool).triu(1)
    raw = transitions.masked_fill(~forward, 0.0).requires_grad_()
    emissions = emissions.requires_grad_()

    def loss(raw, emissions):
        return dag_log_likelihood(raw.masked_fill(~forward, float("-inf")), emissions, vertices, lengths)

    assert torch.autograd.gradcheck(loss, (raw, emissions))


def test_impossible_shapes_are_errors():
    transitions = torch.zeros(1, 3, 3)
    emissions = torch.zeros(1, 3, 4)
    with pytest.raises(ValueError, match="vertices"):
        dag_log_likelihood(transitions, emissions, torch.tensor([3]), torch.tensor([4]))
    with pytest.raises(ValueError, match="1..T"):
        dag_log_likelihood(transitions, emissions, torch.tensor([3]), torch.tensor([0]))
    with pytest.raises(ValueError, match="transitions"):
        dag_log_likelihood(torch.zeros(1, 3, 2), emissions, torch.tensor([3]), torch.tensor([2]))


@pytest.mark.parametrize("seed", range(25))
@pytest.mark.parametrize("beta", [0.0, 1.0, 2.0])
def test_joint_viterbi_equals_brute_force_over_paths_and_lengths(seed, beta):
    generator = torch.Generator().manual_seed(seed)
    transitions, _, vertices, _ = random_graph(generator, batch=3, graph=6, steps=1)
    vertices = torch.randint(1, 7, (3,), generator=generator)
    token_scores = -torch.rand(3, 6, generator=generator) * 3
    path, lengths, score = dag_viterbi_path(transitions, token_scores, vertices, beta)
    for b in range(3):
        candidates = [
            (path_score(transitions[b], token_scores[b, :, None].expand(6, 6), p) / len(p) ** beta, p)
            for m in range(1, int(vertices[b]) + 1)
            for p in paths(int(vertices[b]), m)
        ]
        expected_score, expected_path = max(candidates)
        assert float(score[b]) == pytest.approx(expected_score, abs=1e-4)
        assert tuple(path[b, : lengths[b]].tolist()) == expected_path and path[b, lengths[b] :].eq(-1).all()


@pytest.mark.parametrize("seed", range(20))
@pytest.mark.parametrize("lookahead", [0.0, 1.0])
def test_lookahead_path_follows_the_rule(seed, lookahead):
    generator = torch.Generator().manual_seed(seed)
    transitions, _, _, _ = random_graph(generator, batch=4, graph=7, steps=1)
    vertices = torch.randint(1, 8, (4,), generator=generator)
    token_scores = -torch.rand(4, 7, generator=generator) * 3
    path, lengths = dag_lookahead_path(transitions, token_scores, vertices, lookahead)
    for b in range(4):
        expected, vertex, last = [0], 0, int(vertices[b]) - 1
        while vertex != last:
            options = {
                j: float(transitions[b, vertex, j]) + lookahead * float(token_scores[b, j])
                for j in range(vertex + 1, last + 1)
            }
            vertex = max(options, key=options.get)
            expected.append(vertex)
        assert path[b, : lengths[b]].tolist() == expected and path[b, lengths[b] :].eq(-1).all()


@pytest.mark.parametrize("seed", range(15))
def test_viterbi_paths_are_the_best_path_of_each_of_the_k_best_lengths(seed):
    generator = torch.Generator().manual_seed(seed)
    transitions, _, _, _ = random_graph(generator, batch=3, graph=6, steps=1)
    vertices = torch.randint(1, 7, (3,), generator=generator)
    token_scores = -torch.rand(3, 6, generator=generator) * 3
    k = 4
    found, lengths, scores = dag_viterbi_paths(transitions, token_scores, vertices, 1.0, k)
    assert found.shape == (3, k, 6) and lengths.shape == scores.shape == (3, k)
    for b in range(3):
        best_of_length = {}
        for m in range(1, int(vertices[b]) + 1):
            scored = [
                (path_score(transitions[b], token_scores[b, :, None].expand(6, 6), p) / m, p)
                for p in paths(int(vertices[b]), m)
            ]
            if scored:
                best_of_length[m] = max(scored)
        ranked = sorted(best_of_length.values(), reverse=True)
        ranked += [ranked[0]] * (k - len(ranked))  # fewer lengths than k: the best repeats
        for j in range(k):
            assert float(scores[b, j]) == pytest.approx(ranked[j][0], abs=1e-4)
            assert tuple(found[b, j, : lengths[b, j]].tolist()) == ranked[j][1]
    one = dag_viterbi_path(transitions, token_scores, vertices, 1.0)
    assert torch.equal(one[0], found[:, 0]) and torch.equal(one[1], lengths[:, 0])


@pytest.mark.parametrize("merge", [True, False])
@pytest.mark.parametrize("seed", range(10))
def test_path_output_reads_the_inner_vertices_and_merges_repeats(seed, merge):
    generator = torch.Generator().manual_seed(seed)
    batch, graph, pad = 4, 7, 0
    vertex_tokens = torch.randint(1, 4, (batch, graph), generator=generator)  # few tokens: many repeats
    vertex_scores = -torch.rand(batch, graph, generator=generator)
    lengths = torch.randint(1, graph + 1, (batch,), generator=generator)
    path = torch.full((batch, graph), -1)
    for b in range(batch):
        inner = sorted(torch.randperm(graph - 2, generator=generator)[: max(int(lengths[b]) - 2, 0)].add(1).tolist())
        row = [0, *inner, graph - 1][: int(lengths[b])]
        path[b, : len(row)] = torch.tensor(row)
    tokens, scores = dag_path_output(path, lengths, vertex_tokens, vertex_scores, pad, merge_repeats=merge)
    for b in range(batch):
        inner = path[b, 1 : max(int(lengths[b]) - 1, 1)].tolist()
        expected = []
        for vertex in inner:
            token = int(vertex_tokens[b, vertex])
            if not (merge and expected and expected[-1][0] == token):
                expected.append((token, float(vertex_scores[b, vertex])))
        got = tokens[b][tokens[b].ne(pad)].tolist()
        assert got == [t for t, _ in expected]
        assert scores[b, : len(got)].tolist() == pytest.approx([s for _, s in expected])
