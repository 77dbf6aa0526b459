"""Pure risk maths: valuation, LTV, delta, leverage, drawdown, stress, escalation ladder. No I/O."""
