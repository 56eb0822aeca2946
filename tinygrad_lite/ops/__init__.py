"""The differentiable operations, grouped by kind: each Function keeps forward and backward together."""
