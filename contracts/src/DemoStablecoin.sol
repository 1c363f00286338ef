// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {ERC20} from "@openzeppelin/contracts/token/ERC20/ERC20.sol";
import {ERC20Permit} from "@openzeppelin/contracts/token/ERC20/extensions/ERC20Permit.sol";
import {Ownable} from "@openzeppelin/contracts/access/Ownable.sol";

/// @notice Demo settlement cash: a plain 6-decimal ERC-20 the owner can mint, with EIP-2612 `permit`
/// so an investor can approve the settlement contract by signature instead of a transaction.
contract DemoStablecoin is ERC20, ERC20Permit, Ownable {
    constructor(address owner_) ERC20("Demo USD", "dUSD") ERC20Permit("Demo USD") Ownable(owner_) {}

    function decimals() public pure override returns (uint8) {
        return 6;
    }

    function mint(address to, uint256 amount) external onlyOwner {
        _mint(to, amount);
    }
}
