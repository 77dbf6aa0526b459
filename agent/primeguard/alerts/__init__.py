"""Alerts: decide which findings and ladder transitions to tell people about, and tell them.

    from primeguard.alerts.notifier import Notifier
    notifier = Notifier(config.alerts, store, base_dir=config_dir)
    deliveries = await notifier.process(findings, ladder_events)   # once per sweep

Pure parts: :mod:`.config`, :mod:`.model`, :mod:`.plan` (``plan(...) -> list[Send]``),
:mod:`.render`, :mod:`.redact`. I/O: :mod:`.channels` (log, webhook/Slack, email), :mod:`.notifier`.
This package's ``__init__`` imports nothing, so the config schema can import :mod:`.config` cheaply.
See docs/alerts.md.
"""
