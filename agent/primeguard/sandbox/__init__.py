"""Local stand-ins for the outside world: anvil chains with our contracts, venue simulators
speaking the venues' wire formats, and the scenario that describes them."""
