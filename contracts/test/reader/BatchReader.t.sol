// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.20;

import {Test} from "../utils/Test.sol";
import {BatchReader} from "../../src/reader/BatchReader.sol";
import {SandboxToken} from "../../src/tokens/SandboxToken.sol";
import {SandboxAggregator} from "../../src/oracles/SandboxAggregator.sol";

/// @dev UNSAFE mock: a "feed" whose round id does not fit uint80, to prove one bad feed cannot
/// revert the batch.
contract OutOfRangeFeedMock {
    function decimals() external pure returns (uint256) {
        return 8;
    }

    function latestRoundData() external pure returns (uint256, int256, uint256, uint256, uint256) {
        return (type(uint256).max, 1, 1, 1, 1);
    }
}

/// @dev UNSAFE mock: a token whose balanceOf and allowance always revert.
contract RevertingTokenMock {
    function balanceOf(address) external pure returns (uint256) {
        revert("broken");
    }

    function allowance(address, address) external pure returns (uint256) {
        revert("broken");
    }
}

contract BatchReaderTest is Test {
    BatchReader private reader;
    SandboxToken private tokenA;
    SandboxToken private tokenB;
    SandboxAggregator private feed;

    function setUp() public {
        reader = new BatchReader();
        tokenA = new SandboxToken();
        tokenA.initialize("A", "A", 6, address(this));
        tokenB = new SandboxToken();
        tokenB.initialize("B", "B", 18, address(this));
        feed = new SandboxAggregator();
        feed.initialize(8, "ETH / USD", address(this));
        vm.warp(1_700_000_000);
        feed.updateAnswer(3000e8);
    }

    function _wallets(uint256 n) private pure returns (address[] memory ws) {
        ws = new address[](n);
        for (uint256 i = 0; i < n; ++i) {
            // forge-lint: disable-next-line(unsafe-typecast)
            ws[i] = address(uint160(0x1000 + i)); // i < a few hundred, far below 2**160
        }
    }

    function test_TokenBalancesAreTokenMajorAndMatchSingleCalls() public {
        address[] memory ws = _wallets(3);
        for (uint256 i = 0; i < 3; ++i) {
            tokenA.mint(ws[i], (i + 1) * 1e6);
            tokenB.mint(ws[i], (i + 7) * 1e18);
        }
        address[] memory ts = new address[](2);
        ts[0] = address(tokenA);
        ts[1] = address(tokenB);
        (uint256[] memory got, bool[] memory ok) = reader.tokenBalances(ts, ws);
        assertEq(got.length, 6);
        for (uint256 t = 0; t < 2; ++t) {
            for (uint256 w = 0; w < 3; ++w) {
                assertTrue(ok[t * 3 + w]);
                assertEq(got[t * 3 + w], SandboxToken(ts[t]).balanceOf(ws[w]));
            }
        }
    }

    function test_NativeBalances() public {
        address[] memory ws = _wallets(2);
        vm.deal(ws[0], 1 ether);
        vm.deal(ws[1], 3 ether);
        uint256[] memory got = reader.nativeBalances(ws);
        assertEq(got[0], 1 ether);
        assertEq(got[1], 3 ether);
    }

    function test_AllowancesTriples() public {
        address[] memory ws = _wallets(2);
        vm.prank(ws[0]);
        tokenA.approve(ws[1], type(uint256).max);
        address[] memory ts = new address[](2);
        ts[0] = address(tokenA);
        ts[1] = address(0xdead);
        address[] memory owners = new address[](2);
        owners[0] = ws[0];
        owners[1] = ws[0];
        address[] memory spenders = new address[](2);
        spenders[0] = ws[1];
        spenders[1] = ws[1];
        (uint256[] memory values, bool[] memory ok) = reader.allowances(ts, owners, spenders);
        assertEq(values[0], type(uint256).max);
        assertTrue(ok[0]);
        assertFalse(ok[1], "non-contract token must be not ok");
    }

    function test_LatestRoundsFlagsBrokenFeedsWithoutReverting() public {
        address[] memory feeds = new address[](3);
        feeds[0] = address(feed);
        feeds[1] = address(0xdead);
        feeds[2] = address(new OutOfRangeFeedMock());
        BatchReader.Round[] memory rounds = reader.latestRounds(feeds);
        assertTrue(rounds[0].ok);
        assertEq(rounds[0].answer, 3000e8);
        assertEq(uint256(rounds[0].decimals), 8);
        assertEq(rounds[0].updatedAt, block.timestamp);
        assertFalse(rounds[1].ok, "EOA feed must be not ok");
        assertFalse(rounds[2].ok, "out-of-range feed must be not ok");
    }

    function test_RevertingTokenYieldsZeroAndNotOkWithoutBlindingOthers() public {
        address[] memory ws = _wallets(2);
        tokenA.mint(ws[1], 7e6);
        address[] memory ts = new address[](3);
        ts[0] = address(new RevertingTokenMock());
        ts[1] = address(tokenA);
        ts[2] = address(0xdead); // not a contract
        (uint256[] memory got, bool[] memory ok) = reader.tokenBalances(ts, ws);
        assertEq(got.length, 6);
        for (uint256 w = 0; w < 2; ++w) {
            assertFalse(ok[w], "reverting token must be not ok");
            assertEq(got[w], 0);
            assertTrue(ok[2 + w]);
            assertFalse(ok[4 + w], "non-contract token must be not ok");
            assertEq(got[4 + w], 0);
        }
        assertEq(got[3], 7e6);
    }

    function test_RevertIf_AllowancesLengthsDiffer() public {
        address[] memory one = _wallets(1);
        address[] memory two = _wallets(2);
        vm.expectRevert(bytes("BatchReader: length mismatch"));
        reader.allowances(one, two, two);
    }

    function test_CallsReturnDataAndFlagFailuresWithoutReverting() public {
        tokenA.mint(address(0x1000), 5e6);
        address[] memory ts = new address[](3);
        bytes[] memory data = new bytes[](3);
        ts[0] = address(tokenA);
        data[0] = abi.encodeWithSelector(0x70a08231, address(0x1000));
        ts[1] = address(new RevertingTokenMock());
        data[1] = abi.encodeWithSelector(0x70a08231, address(0x1000));
        ts[2] = address(0xdead); // not a contract
        data[2] = abi.encodeWithSelector(0x70a08231, address(0x1000));
        (bool[] memory ok, bytes[] memory out) = reader.calls(ts, data);
        assertTrue(ok[0]);
        assertEq(abi.decode(out[0], (uint256)), 5e6);
        assertFalse(ok[1], "reverting call must be not ok");
        assertFalse(ok[2], "call to a non-contract must be not ok");
        assertEq(out[2].length, 0);
    }

    function test_CodeSizes() public view {
        address[] memory accounts = new address[](2);
        accounts[0] = address(tokenA);
        accounts[1] = address(0xbeef);
        uint256[] memory sizes = reader.codeSizes(accounts);
        assertGt(sizes[0], 0);
        assertEq(sizes[1], 0);
    }

    function testFuzz_TokenBalancesEqualIndividualReads(uint8 nWallets, uint96 seed) public {
        uint256 n = bound(nWallets, 0, 40);
        address[] memory ws = _wallets(n);
        for (uint256 i = 0; i < n; ++i) {
            tokenA.mint(ws[i], uint256(keccak256(abi.encode(seed, i))) % 1e30);
        }
        address[] memory ts = new address[](1);
        ts[0] = address(tokenA);
        (uint256[] memory got, bool[] memory ok) = reader.tokenBalances(ts, ws);
        assertEq(got.length, n);
        for (uint256 i = 0; i < n; ++i) {
            assertTrue(ok[i]);
            assertEq(got[i], tokenA.balanceOf(ws[i]));
        }
    }

    function testFuzz_LatestRoundsEqualIndividualReads(uint8 nFeeds, uint256 mask) public view {
        uint256 n = bound(nFeeds, 0, 24);
        address[] memory feeds = new address[](n);
        for (uint256 i = 0; i < n; ++i) {
            // Bit i of mask picks a live feed or an empty address (i < 25: the cast cannot truncate).
            // forge-lint: disable-next-line(unsafe-typecast)
            feeds[i] = (mask >> i) & 1 == 1 ? address(feed) : address(uint160(0xdead0000 + i));
        }
        BatchReader.Round[] memory rounds = reader.latestRounds(feeds);
        assertEq(rounds.length, n);
        (uint80 id, int256 answer, uint256 startedAt, uint256 updatedAt, uint80 air) = feed.latestRoundData();
        for (uint256 i = 0; i < n; ++i) {
            if ((mask >> i) & 1 == 0) {
                assertFalse(rounds[i].ok);
                continue;
            }
            assertTrue(rounds[i].ok);
            assertEq(uint256(rounds[i].roundId), uint256(id));
            assertEq(rounds[i].answer, answer);
            assertEq(rounds[i].startedAt, startedAt);
            assertEq(rounds[i].updatedAt, updatedAt);
            assertEq(uint256(rounds[i].answeredInRound), uint256(air));
            assertEq(uint256(rounds[i].decimals), uint256(feed.decimals()));
        }
    }

    function testFuzz_NativeBalancesEqualIndividualReads(uint8 nWallets, uint96 seed) public {
        uint256 n = bound(nWallets, 0, 64);
        address[] memory ws = _wallets(n);
        for (uint256 i = 0; i < n; ++i) {
            vm.deal(ws[i], uint256(keccak256(abi.encode(seed, i))) % 1e30);
        }
        uint256[] memory got = reader.nativeBalances(ws);
        assertEq(got.length, n);
        for (uint256 i = 0; i < n; ++i) {
            assertEq(got[i], ws[i].balance);
        }
    }
}
