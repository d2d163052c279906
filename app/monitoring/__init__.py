"""Monitoring after the decision: outcomes, realised performance, fairness (issue 19)."""
