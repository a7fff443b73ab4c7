"""Scoring: predictions from any source (a sweep cell, a file, human annotators) checked against the
surveys, parsed by their method and scored row by row (TV, alignment) with the same code."""
