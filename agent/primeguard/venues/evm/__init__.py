"""EVM adapter (web3): balances, oracle rounds, approvals and Safe facts, returned as domain types."""
