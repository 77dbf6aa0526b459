"""Pure policy: schema, loader, engine, diff and the policy-test runner. No I/O beyond reading files."""
