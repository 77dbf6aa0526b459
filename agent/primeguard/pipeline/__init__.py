"""One sweep as data flows: collect every venue → evaluate (risk + policy) → outcome (what is
recorded). Used by the daemon, custody (live withdrawal context), the reports and the web.

``collect`` does I/O through the venue registry; ``evaluate`` and ``collateral`` are pure;
``outcome`` writes one sweep's results to the store; ``reports`` builds the JSON reports.
"""
