// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";
import {ReentrancyGuard} from "@openzeppelin/contracts/utils/ReentrancyGuard.sol";
import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";

/// @title Atomic delivery-versus-payment settlement for venue trades.
/// @notice The venue's settler submits matched trades in batches. Each trade moves the security
/// (seller -> buyer) and the cash (buyer -> seller) with `transferFrom`, both legs or neither.
/// A failing trade reverts only its own legs and emits `TradeFailed`; the rest of the batch settles.
/// A trade id is decided at most once, settled or failed: a resubmitted decided id emits
/// `TradeAlreadyDecided` and moves nothing, so a settler that crashed mid-flight can resubmit safely
/// and a trade that failed can never settle later.
/// @dev Decisions live in a bitmap, two bits per trade id (decided, failed), 128 ids per storage word,
/// so a batch of sequential ids writes one word. The trade's terms are in the calldata and in the
/// tokens' `Transfer` events; our events carry only the id (and the failure reason).
contract DvPSettlement is AccessControl, ReentrancyGuard {
    bytes32 public constant SETTLER_ROLE = keccak256("SETTLER_ROLE");

    struct Trade {
        uint256 tradeId;
        address token;
        address seller;
        address buyer;
        uint256 quantity;
        address cashToken;
        uint256 cashAmount;
    }

    /// @notice Block of deployment: where a search for this contract's events starts.
    uint256 public immutable deployedAt;
    mapping(uint256 word => uint256 bits) private _decisions;

    event TradeSettled(uint256 indexed tradeId);
    /// @notice `reason` is the raw revert data: DeliveryFailed/PaymentFailed wrapping the token's own
    /// revert data, or one of the validation errors below.
    event TradeFailed(uint256 indexed tradeId, bytes reason);
    /// @notice A decided trade id was submitted again; nothing moved. `settled` is the earlier outcome.
    event TradeAlreadyDecided(uint256 indexed tradeId, bool settled);

    error InvalidTrade(uint256 tradeId, string what);
    error NotAContract(address account);
    error DeliveryFailed(bytes reason);
    error PaymentFailed(bytes reason);
    error OnlySelf();
    /// @dev A trade ran out of the gas forwarded to it: the whole batch needs more gas, so we revert it
    /// instead of recording a failure the settler caused.
    error BatchOutOfGas(uint256 tradeId);

    uint256 private constant _DECIDED = 1;
    uint256 private constant _FAILED = 2;

    constructor(address admin, address settler) {
        _grantRole(DEFAULT_ADMIN_ROLE, admin);
        _grantRole(SETTLER_ROLE, settler);
        deployedAt = block.number;
    }

    function _bits(uint256 tradeId) private view returns (uint256) {
        return (_decisions[tradeId >> 7] >> ((tradeId & 127) << 1)) & 3;
    }

    function _record(uint256 tradeId, uint256 bits) private {
        _decisions[tradeId >> 7] |= bits << ((tradeId & 127) << 1);
    }

    function settled(uint256 tradeId) external view returns (bool) {
        return _bits(tradeId) == _DECIDED;
    }

    /// @notice Whether a trade id is decided, and whether it settled (false: failed or undecided).
    function decision(uint256 tradeId) external view returns (bool decided, bool settledOk) {
        uint256 b = _bits(tradeId);
        return (b != 0, b == _DECIDED);
    }

    function settle(Trade[] calldata trades) external onlyRole(SETTLER_ROLE) nonReentrant {
        for (uint256 i = 0; i < trades.length; ++i) {
            Trade calldata t = trades[i];
            uint256 done = _bits(t.tradeId);
            if (done != 0) {
                emit TradeAlreadyDecided(t.tradeId, done == _DECIDED);
                continue;
            }
            uint256 gasBefore = gasleft();
            try this.settleOne(t) {
                emit TradeSettled(t.tradeId);
            } catch (bytes memory reason) {
                // The callee got 63/64 of gasBefore; if it used (nearly) all of it, the batch was underfunded.
                if (reason.length == 0 && gasleft() <= gasBefore / 63) revert BatchOutOfGas(t.tradeId);
                // Id 0 is invalid and never decided.
                if (t.tradeId != 0) _record(t.tradeId, _DECIDED | _FAILED);
                emit TradeFailed(t.tradeId, reason);
            }
        }
    }

    /// @dev External only so `settle` can isolate each trade with try/catch; callable by this contract alone.
    function settleOne(Trade calldata t) external {
        if (msg.sender != address(this)) revert OnlySelf();
        if (t.tradeId == 0) revert InvalidTrade(t.tradeId, "trade id is zero");
        if (t.quantity == 0) revert InvalidTrade(t.tradeId, "quantity is zero");
        if (t.cashAmount == 0) revert InvalidTrade(t.tradeId, "cash amount is zero");
        if (t.seller == t.buyer) revert InvalidTrade(t.tradeId, "seller is buyer");
        if (t.seller == address(0) || t.buyer == address(0)) revert InvalidTrade(t.tradeId, "zero address");
        if (t.token.code.length == 0) revert NotAContract(t.token);
        if (t.cashToken.code.length == 0) revert NotAContract(t.cashToken);
        _record(t.tradeId, _DECIDED);
        _leg(t.token, t.seller, t.buyer, t.quantity, true);
        _leg(t.cashToken, t.buyer, t.seller, t.cashAmount, false);
    }

    function _leg(address token, address from, address to, uint256 amount, bool delivery) private {
        (bool ok, bytes memory ret) = token.call(abi.encodeCall(IERC20.transferFrom, (from, to, amount)));
        if (ok && (ret.length == 0 || (ret.length == 32 && abi.decode(ret, (bool))))) return;
        if (ok) ret = abi.encodeWithSignature("Error(string)", "transferFrom returned false");
        if (delivery) revert DeliveryFailed(ret);
        revert PaymentFailed(ret);
    }
}
