"""Parsers: model text -> a distribution over the shown options. All are pure and total: they never
raise on model output, and an unreadable answer becomes ``Parsed.unparsed`` (counted in the extraction
rate). Which parser a method uses, and with which settings, is the method's own business
(``Method.parse_answer``; ``distalign.methods.registry.parse_response`` for raw responses by method name).
"""

from distalign.methods.parsers.letter import extract_final_answer, parse_letter, parse_letter_samples
from distalign.methods.parsers.option_logprobs import logprob_coverage, logprobs_to_distribution
from distalign.methods.parsers.sequence import parse_sequence
from distalign.methods.parsers.verbalized import parse_verbalized, parse_verbalized_many

__all__ = [
    "extract_final_answer",
    "logprob_coverage",
    "logprobs_to_distribution",
    "parse_letter",
    "parse_letter_samples",
    "parse_sequence",
    "parse_verbalized",
    "parse_verbalized_many",
]
