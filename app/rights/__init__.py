"""After an automated decision, the client's rights (docs/rights.md): decision letters, what would change the
outcome, human review, overrides with four eyes, the audit trail and the client's file."""
