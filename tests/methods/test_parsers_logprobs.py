import math

import numpy as np
from scipy.special import softmax

from distalign.methods.parsers import logprob_coverage, logprobs_to_distribution
from distalign.methods.registry import parse_response


def test_softmax_over_present_candidates() -> None:
    lp = [-0.5, -1.5, -3.0]
    p = logprobs_to_distribution(lp)
    assert p.status == "ok"
    np.testing.assert_allclose(p.probs, softmax(lp))


def test_missing_candidates_are_explicit() -> None:
    p = logprobs_to_distribution([-1.0, None, -2.0])
    assert p.status == "partial" and "B" in p.detail
    assert p.probs[1] == 0
    np.testing.assert_allclose(p.probs[[0, 2]], softmax([-1.0, -2.0]))


def test_all_missing_is_unparsed() -> None:
    assert logprobs_to_distribution([None, None]).status == "unparsed"
    assert logprobs_to_distribution([]).status == "unparsed"
    assert logprobs_to_distribution([float("nan"), None]).status == "unparsed"


def test_coverage_is_the_raw_mass_of_the_candidates() -> None:
    assert math.isclose(logprob_coverage([math.log(0.03), math.log(0.02), None]), 0.05)
    assert "coverage 0.05" in logprobs_to_distribution([math.log(0.03), math.log(0.02)]).detail


def test_dispatch_reads_json_mapping_or_list() -> None:
    by_letter = parse_response("logprobs", '{"A": -0.1, "C": -2.0}', "ABC")
    as_list = parse_response("logprobs", "[-0.1, null, -2.0]", "ABC")
    np.testing.assert_allclose(by_letter.probs, as_list.probs)
    assert by_letter.probs[1] == 0 and by_letter.status == "partial"
    assert parse_response("logprobs", "not json", "ABC").status == "unparsed"
