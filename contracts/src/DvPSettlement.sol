// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";
import {ReentrancyGuard} from "@openzeppelin/contracts/utils/ReentrancyGuard.sol";
import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {EIP712} from "@openzeppelin/contracts/utils/cryptography/EIP712.sol";
import {ECDSA} from "@openzeppelin/contracts/utils/cryptography/ECDSA.sol";
import {SignatureChecker} from "@openzeppelin/contracts/utils/cryptography/SignatureChecker.sol";

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
///
/// Signed mode: a wallet that called `setSignedOnly(true)` can be debited only by `settleSigned`, on
/// an EIP-712 `Order` it signed (an EOA signature, or ERC-1271 for a contract wallet such as a Safe):
/// the trade's side, tokens and wallet match the order, its price is within the order's limit, the
/// order has not expired nor been cancelled (by hash, or in bulk by raising the wallet's minimum
/// nonce), and the order's cumulative fills (per order hash) never exceed its maximum quantity.
/// The domain (this contract's address and the chain id) keeps an order from being replayed on
/// another venue contract or chain.
contract DvPSettlement is AccessControl, ReentrancyGuard, EIP712 {
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

    /// @notice An investor's order. `limitPrice` is in cash-token base units per `PRICE_SCALE`
    /// note-token base units: a buy pays at most, a sell receives at least, that price.
    /// `maxQuantity` is in note-token base units, `expiry` a unix time (the order is void from it on).
    struct Order {
        address wallet;
        address token;
        address cashToken;
        bool sell;
        uint256 limitPrice;
        uint256 maxQuantity;
        uint256 expiry;
        uint256 nonce;
    }

    /// @notice An order handed to `settleSigned`; an empty signature refers to an order registered
    /// (filled at least once) earlier, whose signature was checked then.
    struct SignedOrder {
        Order order;
        bytes signature;
    }

    /// @notice `sellOrder` / `buyOrder`: 1-based index into the batch's orders, 0 for an unsigned side.
    struct SignedTrade {
        Trade trade;
        uint256 sellOrder;
        uint256 buyOrder;
    }

    bytes32 public constant ORDER_TYPEHASH = keccak256(
        "Order(address wallet,address token,address cashToken,bool sell,uint256 limitPrice,uint256 maxQuantity,uint256 expiry,uint256 nonce)"
    );
    uint256 public constant PRICE_SCALE = 1e18;

    /// @notice Block of deployment: where a search for this contract's events starts.
    uint256 public immutable deployedAt;
    mapping(uint256 word => uint256 bits) private _decisions;
    /// @dev Per wallet, one slot: minimum valid nonce << 128 | consumed-nonce bitmap << 1 | signed-only
    /// flag. Bit 1 + k marks nonce minNonce + k (k < 127) consumed: an order filled completely by one
    /// trade consumes its nonce there (a write to a slot signed mode already uses) instead of taking
    /// a fresh per-order slot.
    mapping(address wallet => uint256 packed) private _wallets;
    /// @dev One bit per wallet (its address mod 256) set when the wallet turns signed mode on, so the
    /// unsigned path reads a wallet's slot only when the bit is set: no false negatives, and a
    /// false positive costs one extra read.
    uint256 private _signedBloom;
    /// @dev Per keccak(wallet, order hash): filled << 2 | cancelled << 1 | registered. Keyed with the
    /// wallet so that a cancel by hash from any other account touches a slot nobody reads.
    mapping(bytes32 key => uint256 packed) private _orders;

    event TradeSettled(uint256 indexed tradeId);
    /// @notice `reason` is the raw revert data: DeliveryFailed/PaymentFailed wrapping the token's own
    /// revert data, or one of the validation errors below.
    event TradeFailed(uint256 indexed tradeId, bytes reason);
    /// @notice A decided trade id was submitted again; nothing moved. `settled` is the earlier outcome.
    event TradeAlreadyDecided(uint256 indexed tradeId, bool settled);

    /// @notice An order was cancelled by its wallet (by hash).
    event OrderCancelled(address indexed wallet, bytes32 indexed orderHash);
    /// @notice A wallet voided all its orders with a nonce below `minNonce`.
    event MinNonceRaised(address indexed wallet, uint256 minNonce);
    /// @notice A wallet switched signed mode on or off.
    event SignedOnlySet(address indexed wallet, bool signedOnly);

    error InvalidTrade(uint256 tradeId, string what);
    /// @notice A signed-only wallet on a side without an order.
    error OrderRequired(address wallet);
    /// @notice The signature does not verify for the order's wallet (or a referenced order was never registered).
    error BadSignature(bytes32 orderHash);
    error OrderMismatch(bytes32 orderHash, string what);
    error PriceBeyondLimit(bytes32 orderHash);
    error OrderExpired(bytes32 orderHash);
    error OrderCancelledError(bytes32 orderHash);
    error NonceTooLow(bytes32 orderHash);
    error Overfill(bytes32 orderHash, uint256 filled, uint256 maxQuantity);
    error NonceNotRaised(uint256 current);
    error NotAContract(address account);
    error DeliveryFailed(bytes reason);
    error PaymentFailed(bytes reason);
    error OnlySelf();
    /// @dev A trade ran out of the gas forwarded to it: the whole batch needs more gas, so we revert it
    /// instead of recording a failure the settler caused.
    error BatchOutOfGas(uint256 tradeId);

    uint256 private constant _WINDOW = 127;
    uint256 private constant _WINDOW_MASK = (1 << 127) - 1;
    uint256 private constant _DECIDED = 1;
    uint256 private constant _FAILED = 2;

    constructor(address admin, address settler) EIP712("OMN DvP", "1") {
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

    // ------------------------------------------------------------------ investors' own controls

    /// @notice Signed mode for the caller's wallet: when on, nothing leaves it except against its signed orders.
    function setSignedOnly(bool on) external {
        uint256 w = _wallets[msg.sender];
        _wallets[msg.sender] = on ? w | 1 : w & ~uint256(1);
        if (on) _signedBloom |= 1 << (uint160(msg.sender) & 255);
        emit SignedOnlySet(msg.sender, on);
    }

    /// @notice Cancel the caller's orders by hash.
    function cancelOrders(bytes32[] calldata orderHashes) external {
        for (uint256 i = 0; i < orderHashes.length; ++i) {
            _orders[_orderKey(msg.sender, orderHashes[i])] |= 2;
            emit OrderCancelled(msg.sender, orderHashes[i]);
        }
    }

    /// @notice Void every order of the caller whose nonce is below `minNonce`.
    function raiseMinNonce(uint256 newMinNonce) external {
        uint256 w = _wallets[msg.sender];
        uint256 current = w >> 128;
        if (newMinNonce <= current || newMinNonce >= 1 << 128) revert NonceNotRaised(current);
        uint256 shift = newMinNonce - current;
        uint256 consumed = shift >= _WINDOW ? 0 : ((w >> 1) & _WINDOW_MASK) >> shift;
        _wallets[msg.sender] = (newMinNonce << 128) | (consumed << 1) | (w & 1);
        emit MinNonceRaised(msg.sender, newMinNonce);
    }

    function signedOnly(address wallet) external view returns (bool) {
        return _wallets[wallet] & 1 == 1;
    }

    function minNonce(address wallet) external view returns (uint256) {
        return _wallets[wallet] >> 128;
    }

    /// @notice What the contract knows of an order: whether a fill registered it, whether it is
    /// cancelled, and its cumulative fill in note-token base units.
    function orderState(address wallet, bytes32 orderHash)
        external
        view
        returns (bool registered, bool cancelled, uint256 filled)
    {
        uint256 s = _orders[_orderKey(wallet, orderHash)];
        return (s & 1 == 1, s & 2 == 2, s >> 2);
    }

    /// @notice How much of `order` is filled (its maximum once its nonce is consumed), and whether
    /// it is cancelled.
    function orderStatus(Order calldata order) external view returns (bool cancelled, uint256 filled) {
        uint256 s = _orders[_orderKey(order.wallet, hashOrder(order))];
        uint256 w = _wallets[order.wallet];
        uint256 minN = w >> 128;
        bool consumed = order.nonce >= minN && order.nonce - minN < _WINDOW
            && (w >> (1 + order.nonce - minN)) & 1 == 1;
        return (s & 2 == 2, consumed ? order.maxQuantity : s >> 2);
    }

    /// @notice The EIP-712 digest the order's wallet signs.
    function hashOrder(Order calldata order) public view returns (bytes32) {
        return _hashTypedDataV4(keccak256(abi.encode(ORDER_TYPEHASH, order)));
    }

    function domainSeparator() external view returns (bytes32) {
        return _domainSeparatorV4();
    }

    function _orderKey(address wallet, bytes32 orderHash) private pure returns (bytes32 key) {
        assembly ("memory-safe") {
            mstore(0, wallet)
            mstore(32, orderHash)
            key := keccak256(0, 64)
        }
    }

    // ------------------------------------------------------------------ settlement

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

    /// @notice Settle trades where a side may carry the investor's signed order. Each order's
    /// signature is checked once per batch; a trade whose order does not verify fails alone.
    function settleSigned(SignedTrade[] calldata trades, SignedOrder[] calldata orders)
        external
        onlyRole(SETTLER_ROLE)
        nonReentrant
    {
        bytes32[] memory hashes = new bytes32[](orders.length);
        bool[] memory valid = new bool[](orders.length);
        for (uint256 k = 0; k < orders.length; ++k) {
            SignedOrder calldata so = orders[k];
            bytes32 h = hashOrder(so.order);
            hashes[k] = h;
            valid[k] = so.signature.length == 0
                ? _orders[_orderKey(so.order.wallet, h)] & 1 == 1
                : _validSignature(so.order.wallet, h, so.signature);
        }
        Order memory none;
        for (uint256 i = 0; i < trades.length; ++i) {
            SignedTrade calldata st = trades[i];
            uint256 tradeId = st.trade.tradeId;
            uint256 done = _bits(tradeId);
            if (done != 0) {
                emit TradeAlreadyDecided(tradeId, done == _DECIDED);
                continue;
            }
            bytes memory refused = _refuseRefs(st, hashes, valid);
            if (refused.length == 0) {
                uint256 gasBefore = gasleft();
                (Order memory sellOrder, bytes32 sellHash) = st.sellOrder == 0
                    ? (none, bytes32(0))
                    : (orders[st.sellOrder - 1].order, hashes[st.sellOrder - 1]);
                (Order memory buyOrder, bytes32 buyHash) = st.buyOrder == 0
                    ? (none, bytes32(0))
                    : (orders[st.buyOrder - 1].order, hashes[st.buyOrder - 1]);
                try this.settleSignedOne(st.trade, sellOrder, sellHash, buyOrder, buyHash) {
                    emit TradeSettled(tradeId);
                    continue;
                } catch (bytes memory reason) {
                    if (reason.length == 0 && gasleft() <= gasBefore / 63) revert BatchOutOfGas(tradeId);
                    refused = reason;
                }
            }
            if (tradeId != 0) _record(tradeId, _DECIDED | _FAILED);
            emit TradeFailed(tradeId, refused);
        }
    }

    /// @dev The wallet's own key (ecrecover) first, then ERC-1271. Unlike asking for the wallet's code
    /// first, an EOA's signature costs no cold account access (2,600 gas per order); a contract
    /// wallet's address has no key, so its orders still go to its `isValidSignature`.
    function _validSignature(address wallet, bytes32 h, bytes calldata signature) private view returns (bool) {
        (address recovered, ECDSA.RecoverError err,) = ECDSA.tryRecover(h, signature);
        if (err == ECDSA.RecoverError.NoError && recovered == wallet) return true;
        return SignatureChecker.isValidERC1271SignatureNow(wallet, h, signature);
    }

    function _refuseRefs(SignedTrade calldata st, bytes32[] memory hashes, bool[] memory valid)
        private
        pure
        returns (bytes memory)
    {
        uint256 n = hashes.length;
        if (st.sellOrder > n || st.buyOrder > n) {
            return abi.encodeWithSelector(InvalidTrade.selector, st.trade.tradeId, "order index out of range");
        }
        if (st.sellOrder != 0 && !valid[st.sellOrder - 1]) {
            return abi.encodeWithSelector(BadSignature.selector, hashes[st.sellOrder - 1]);
        }
        if (st.buyOrder != 0 && !valid[st.buyOrder - 1]) {
            return abi.encodeWithSelector(BadSignature.selector, hashes[st.buyOrder - 1]);
        }
        return "";
    }

    /// @dev External only so `settleSigned` can isolate each trade; callable by this contract alone.
    /// A zero hash marks an unsigned side. Fills are recorded here so a failing leg undoes them.
    function settleSignedOne(
        Trade calldata t,
        Order calldata sellOrder,
        bytes32 sellHash,
        Order calldata buyOrder,
        bytes32 buyHash
    ) external {
        if (msg.sender != address(this)) revert OnlySelf();
        if (sellHash == 0) _requireUnsignedAllowed(t.seller);
        else _fill(t, sellOrder, sellHash, true);
        if (buyHash == 0) _requireUnsignedAllowed(t.buyer);
        else _fill(t, buyOrder, buyHash, false);
        _settleChecked(t);
    }

    function _requireUnsignedAllowed(address wallet) private view {
        if (_signedBloom & (1 << (uint160(wallet) & 255)) != 0 && _wallets[wallet] & 1 == 1) {
            revert OrderRequired(wallet);
        }
    }

    function _fill(Trade calldata t, Order calldata o, bytes32 h, bool sell) private {
        if (o.sell != sell) revert OrderMismatch(h, "side");
        if (o.wallet != (sell ? t.seller : t.buyer)) revert OrderMismatch(h, "wallet");
        if (o.token != t.token) revert OrderMismatch(h, "token");
        if (o.cashToken != t.cashToken) revert OrderMismatch(h, "cash token");
        if (block.timestamp >= o.expiry) revert OrderExpired(h);
        uint256 w = _wallets[o.wallet];
        uint256 minN = w >> 128;
        if (o.nonce < minN) revert NonceTooLow(h);
        uint256 bit = o.nonce - minN < _WINDOW ? 1 << (1 + o.nonce - minN) : 0;
        if (w & bit != 0) revert Overfill(h, o.maxQuantity, o.maxQuantity);
        // Both products fit: amounts beyond 2^128 overflow here and fail this trade alone.
        uint256 paid = t.cashAmount * PRICE_SCALE;
        uint256 atLimit = o.limitPrice * t.quantity;
        if (sell ? paid < atLimit : paid > atLimit) revert PriceBeyondLimit(h);
        bytes32 key = _orderKey(o.wallet, h);
        uint256 s = _orders[key];
        if (s & 2 == 2) revert OrderCancelledError(h);
        uint256 filled = (s >> 2) + t.quantity;
        if (filled > o.maxQuantity) revert Overfill(h, s >> 2, o.maxQuantity);
        if (s == 0 && bit != 0 && filled == o.maxQuantity) _wallets[o.wallet] = w | bit;
        else _orders[key] = (filled << 2) | 1;
    }

    /// @dev External only so `settle` can isolate each trade with try/catch; callable by this contract alone.
    function settleOne(Trade calldata t) external {
        if (msg.sender != address(this)) revert OnlySelf();
        _requireUnsignedAllowed(t.seller);
        _requireUnsignedAllowed(t.buyer);
        _settleChecked(t);
    }

    function _settleChecked(Trade calldata t) private {
        if (t.tradeId == 0) revert InvalidTrade(t.tradeId, "trade id is zero");
        if (t.quantity == 0) revert InvalidTrade(t.tradeId, "quantity is zero");
        if (t.cashAmount == 0) revert InvalidTrade(t.tradeId, "cash amount is zero");
        if (t.seller == t.buyer) revert InvalidTrade(t.tradeId, "seller is buyer");
        if (t.seller == address(0) || t.buyer == address(0)) revert InvalidTrade(t.tradeId, "zero address");
        _record(t.tradeId, _DECIDED);
        _leg(t.token, t.seller, t.buyer, t.quantity, true);
        _leg(t.cashToken, t.buyer, t.seller, t.cashAmount, false);
    }

    function _leg(address token, address from, address to, uint256 amount, bool delivery) private {
        (bool ok, bytes memory ret) = token.call(abi.encodeCall(IERC20.transferFrom, (from, to, amount)));
        // A call to an account without code "succeeds" with no data; ask for the code only then.
        if (ok && ret.length == 0 && token.code.length == 0) revert NotAContract(token);
        if (ok && (ret.length == 0 || (ret.length == 32 && abi.decode(ret, (bool))))) return;
        if (ok) ret = abi.encodeWithSignature("Error(string)", "transferFrom returned false");
        if (delivery) revert DeliveryFailed(ret);
        revert PaymentFailed(ret);
    }
}
