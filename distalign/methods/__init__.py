"""Elicitation methods: each builds engine requests from a rendered prompt and parses the results."""
