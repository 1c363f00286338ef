// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {Ownable} from "@openzeppelin/contracts/access/Ownable.sol";
import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";

/// @notice Small compliance module for the demo OMN note: a maximum number of holders and a
/// per-investor holding cap (0 disables a rule). The bound token reports movements through the
/// ERC-3643 compliance hooks so the holder count stays exact.
contract DemoCompliance is Ownable {
    address public tokenBound;
    uint256 public maxHolders;
    uint256 public maxBalance;
    uint256 public holderCount;

    event TokenBound(address _token);
    event TokenUnbound(address _token);
    event MaxHoldersSet(uint256 maxHolders);
    event MaxBalanceSet(uint256 maxBalance);

    error OnlyBoundToken(address caller);
    error TokenAlreadyBound(address token);

    modifier onlyToken() {
        if (msg.sender != tokenBound || msg.sender == address(0)) revert OnlyBoundToken(msg.sender);
        _;
    }

    constructor(address owner_, uint256 maxHolders_, uint256 maxBalance_) Ownable(owner_) {
        maxHolders = maxHolders_;
        maxBalance = maxBalance_;
    }

    function bindToken(address token) external onlyOwner {
        if (tokenBound != address(0)) revert TokenAlreadyBound(tokenBound);
        tokenBound = token;
        emit TokenBound(token);
    }

    function unbindToken(address token) external onlyOwner {
        if (token != tokenBound) revert OnlyBoundToken(token);
        tokenBound = address(0);
        holderCount = 0;
        emit TokenUnbound(token);
    }

    function isTokenBound(address token) external view returns (bool) {
        return token != address(0) && token == tokenBound;
    }

    function setMaxHolders(uint256 maxHolders_) external onlyOwner {
        maxHolders = maxHolders_;
        emit MaxHoldersSet(maxHolders_);
    }

    function setMaxBalance(uint256 maxBalance_) external onlyOwner {
        maxBalance = maxBalance_;
        emit MaxBalanceSet(maxBalance_);
    }

    function canTransfer(address from, address to, uint256 amount) external view returns (bool) {
        if (amount == 0 || from == to) return true;
        uint256 toBalance = IERC20(tokenBound).balanceOf(to);
        if (maxBalance != 0 && toBalance + amount > maxBalance) return false;
        if (maxHolders != 0 && toBalance == 0) {
            // The sender stops being a holder if it moves its whole balance, freeing a slot.
            bool fromLeaves = from != address(0) && IERC20(tokenBound).balanceOf(from) == amount;
            if (!fromLeaves && holderCount >= maxHolders) return false;
        }
        return true;
    }

    // Hooks run after the balances changed.
    function transferred(address from, address to, uint256 amount) external onlyToken {
        if (amount == 0 || from == to) return;
        IERC20 token = IERC20(tokenBound);
        if (token.balanceOf(to) == amount) holderCount += 1;
        if (token.balanceOf(from) == 0) holderCount -= 1;
    }

    function created(address to, uint256 amount) external onlyToken {
        if (amount != 0 && IERC20(tokenBound).balanceOf(to) == amount) holderCount += 1;
    }

    function destroyed(address from, uint256 amount) external onlyToken {
        if (amount != 0 && IERC20(tokenBound).balanceOf(from) == 0) holderCount -= 1;
    }
}
