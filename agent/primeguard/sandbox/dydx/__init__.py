"""dYdX v4 simulators: the indexer HTTP API and the node's accountplus gRPC query service."""
