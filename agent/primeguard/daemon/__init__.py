"""The guardian: sweep pipeline, scheduler jobs, block watcher, leases."""
