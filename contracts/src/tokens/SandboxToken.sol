// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.20;

import {ERC20} from "@openzeppelin/contracts/token/ERC20/ERC20.sol";

/**
 * @title SandboxToken
 * @notice ERC-20 stand-in for USDC, USDT, WETH, WBTC on sandbox chains, with the real decimals.
 * @dev OpenZeppelin's ERC20 sets name and symbol in its constructor, which never runs when the
 * sandbox places runtime code at a canonical address with anvil_setCode. We keep OZ's balance and
 * allowance logic and override the metadata getters to read storage written by {initialize}.
 */
contract SandboxToken is ERC20 {
    address private _owner;
    bool private _initialized;
    uint8 private _decimals;
    string private _name;
    string private _symbol;

    event Initialized(string name, string symbol, uint8 decimals, address owner);

    error SandboxTokenUnauthorized(address caller);
    error SandboxTokenAlreadyInitialized();

    modifier onlyOwner() {
        if (msg.sender != _owner) revert SandboxTokenUnauthorized(msg.sender);
        _;
    }

    constructor() ERC20("", "") {}

    /// @notice Configure metadata and owner. Callable once.
    function initialize(string calldata name_, string calldata symbol_, uint8 decimals_, address owner_) external {
        if (_initialized) revert SandboxTokenAlreadyInitialized();
        _initialized = true;
        _name = name_;
        _symbol = symbol_;
        _decimals = decimals_;
        _owner = owner_;
        emit Initialized(name_, symbol_, decimals_, owner_);
    }

    function mint(address to, uint256 amount) external onlyOwner {
        _mint(to, amount);
    }

    function burn(address from, uint256 amount) external onlyOwner {
        _burn(from, amount);
    }

    function owner() external view returns (address) {
        return _owner;
    }

    function name() public view override returns (string memory) {
        return _name;
    }

    function symbol() public view override returns (string memory) {
        return _symbol;
    }

    function decimals() public view override returns (uint8) {
        return _decimals;
    }
}
