"""The chaos suite: operator and `crane up` SIGKILLed during churn, invariants from outside."""
