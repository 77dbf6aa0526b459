// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.20;

import {IAggregatorV3} from "./IAggregatorV3.sol";

/**
 * @title SandboxAggregator
 * @notice A Chainlink AggregatorV3-compatible USD feed whose rounds the sandbox writes. It can
 * express every failure a consumer must catch: stale rounds, incomplete rounds
 * (answeredInRound < roundId), non-positive answers.
 * @dev All configuration lives in storage and is set by {initialize}, never by immutables, so the
 * sandbox can place this runtime code at a canonical mainnet feed address with anvil_setCode and
 * then initialize it there. Sandbox and test use only: anyone holding the owner key sets prices.
 */
contract SandboxAggregator is IAggregatorV3 {
    struct Round {
        int256 answer;
        uint256 startedAt;
        uint256 updatedAt;
        uint80 answeredInRound;
    }

    address private _owner;
    bool private _initialized;
    uint8 private _decimals;
    string private _description;
    uint80 private _latestRoundId;
    mapping(uint80 roundId => Round) private _rounds;

    /// @notice Emitted when a round's answer is written (Chainlink's event shape).
    event AnswerUpdated(int256 indexed current, uint256 indexed roundId, uint256 updatedAt);
    /// @notice Emitted when a new round starts (Chainlink's event shape).
    event NewRound(uint256 indexed roundId, address indexed startedBy, uint256 startedAt);
    /// @notice Emitted once, when the feed is configured.
    event Initialized(uint8 decimals, string description, address owner);

    error SandboxAggregatorUnauthorized(address caller);
    error SandboxAggregatorAlreadyInitialized();
    error SandboxAggregatorNoRound(uint80 roundId);

    modifier onlyOwner() {
        if (msg.sender != _owner) revert SandboxAggregatorUnauthorized(msg.sender);
        _;
    }

    /// @notice Configure the feed. Callable once; the sandbox calls it after anvil_setCode.
    function initialize(uint8 decimals_, string calldata description_, address owner_) external {
        if (_initialized) revert SandboxAggregatorAlreadyInitialized();
        _initialized = true;
        _decimals = decimals_;
        _description = description_;
        _owner = owner_;
        emit Initialized(decimals_, description_, owner_);
    }

    /// @notice Start and complete a new round with `answer`, updated now.
    function updateAnswer(int256 answer) external onlyOwner {
        uint80 roundId = _latestRoundId + 1;
        _write(roundId, answer, block.timestamp, block.timestamp, roundId);
    }

    /// @notice Write an arbitrary round and make it the latest (stale, incomplete, negative...).
    function setRoundData(
        uint80 roundId,
        int256 answer,
        uint256 startedAt,
        uint256 updatedAt,
        uint80 answeredInRound
    ) external onlyOwner {
        _write(roundId, answer, startedAt, updatedAt, answeredInRound);
    }

    function _write(uint80 roundId, int256 answer, uint256 startedAt, uint256 updatedAt, uint80 answeredInRound)
        private
    {
        _rounds[roundId] = Round(answer, startedAt, updatedAt, answeredInRound);
        _latestRoundId = roundId;
        emit NewRound(roundId, msg.sender, startedAt);
        emit AnswerUpdated(answer, roundId, updatedAt);
    }

    function owner() external view returns (address) {
        return _owner;
    }

    /// @inheritdoc IAggregatorV3
    function decimals() external view returns (uint8) {
        return _decimals;
    }

    /// @inheritdoc IAggregatorV3
    function description() external view returns (string memory) {
        return _description;
    }

    /// @inheritdoc IAggregatorV3
    function version() external pure returns (uint256) {
        return 4;
    }

    /// @inheritdoc IAggregatorV3
    function getRoundData(uint80 roundId) external view returns (uint80, int256, uint256, uint256, uint80) {
        Round memory r = _rounds[roundId];
        if (r.updatedAt == 0 && r.startedAt == 0) revert SandboxAggregatorNoRound(roundId);
        return (roundId, r.answer, r.startedAt, r.updatedAt, r.answeredInRound);
    }

    /// @inheritdoc IAggregatorV3
    /// @dev Before any round: all zeros, which consumers must treat as an incomplete round.
    function latestRoundData() external view returns (uint80, int256, uint256, uint256, uint80) {
        uint80 roundId = _latestRoundId;
        Round memory r = _rounds[roundId];
        return (roundId, r.answer, r.startedAt, r.updatedAt, r.answeredInRound);
    }
}
