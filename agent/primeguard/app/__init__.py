"""The app layer: :class:`~primeguard.app.runtime.Runtime` assembles config, store, the active
policy, venues, notifier, playbooks and custody once; the daemon, the web server, the demo and the
CLI start from it."""
