"""Outcome rules: each council's outcomes plan as validated YAML, compiled to SQL.

Entry points: ``rules.engine.load_plan`` and ``rules.engine.evaluate_outcomes``.
"""
