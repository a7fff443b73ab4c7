"""Steering prompts: templates kept in YAML (Jinja), rendering into chat messages, few-shot selection."""
