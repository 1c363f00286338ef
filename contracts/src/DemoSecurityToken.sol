// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {ERC20} from "@openzeppelin/contracts/token/ERC20/ERC20.sol";
import {Ownable} from "@openzeppelin/contracts/access/Ownable.sol";
import {AgentRoles} from "./AgentRoles.sol";

interface IDemoIdentityRegistry {
    function isVerified(address user) external view returns (bool);
}

interface IDemoCompliance {
    function canTransfer(address from, address to, uint256 amount) external view returns (bool);
    function transferred(address from, address to, uint256 amount) external;
    function created(address to, uint256 amount) external;
    function destroyed(address from, uint256 amount) external;
}

/// @notice Demo OMN note: an ERC-3643-compatible permissioned token (our own implementation).
/// Transfers require: not paused, neither side frozen, amount <= balance - frozen tokens,
/// `identityRegistry().isVerified(to)` and `compliance().canTransfer(from, to, amount)`.
/// Read interface, agent functions and events carry the names of the ERC-3643 standard.
contract DemoSecurityToken is ERC20, AgentRoles {
    IDemoIdentityRegistry private _identityRegistry;
    IDemoCompliance private _compliance;
    uint8 private immutable _decimals;
    bool private _paused;
    mapping(address => bool) private _frozen;
    mapping(address => uint256) private _frozenTokens;

    event IdentityRegistryAdded(address indexed _identityRegistry);
    event ComplianceAdded(address indexed _compliance);
    event AddressFrozen(address indexed userAddress, bool indexed isFrozen, address indexed owner);
    event TokensFrozen(address indexed userAddress, uint256 amount);
    event TokensUnfrozen(address indexed userAddress, uint256 amount);
    event Paused(address userAddress);
    event Unpaused(address userAddress);

    error TokenPaused();
    error TokenNotPaused();
    error WalletFrozen(address wallet);
    error InsufficientUnfrozenBalance(address wallet, uint256 available, uint256 needed);
    error RecipientNotVerified(address wallet);
    error ComplianceRejected(address from, address to, uint256 amount);
    error AmountExceedsFrozen(address wallet, uint256 frozen, uint256 amount);
    error AmountExceedsBalance(address wallet, uint256 balance, uint256 amount);

    constructor(
        string memory name_,
        string memory symbol_,
        uint8 decimals_,
        address owner_,
        address identityRegistry_,
        address compliance_
    ) ERC20(name_, symbol_) Ownable(owner_) {
        _decimals = decimals_;
        _setIdentityRegistry(identityRegistry_);
        _setCompliance(compliance_);
    }

    // ---- ERC-3643 read interface
    function decimals() public view override returns (uint8) {
        return _decimals;
    }

    function identityRegistry() external view returns (address) {
        return address(_identityRegistry);
    }

    function compliance() external view returns (address) {
        return address(_compliance);
    }

    function paused() external view returns (bool) {
        return _paused;
    }

    function isFrozen(address wallet) external view returns (bool) {
        return _frozen[wallet];
    }

    function getFrozenTokens(address wallet) external view returns (uint256) {
        return _frozenTokens[wallet];
    }

    function onchainID() external pure returns (address) {
        return address(0);
    }

    function version() external pure returns (string memory) {
        return "omn-demo-1";
    }

    // ---- owner configuration
    function setIdentityRegistry(address identityRegistry_) external onlyOwner {
        _setIdentityRegistry(identityRegistry_);
    }

    function setCompliance(address compliance_) external onlyOwner {
        _setCompliance(compliance_);
    }

    // ---- agent functions
    function pause() external onlyAgent {
        if (_paused) revert TokenPaused();
        _paused = true;
        emit Paused(msg.sender);
    }

    function unpause() external onlyAgent {
        if (!_paused) revert TokenNotPaused();
        _paused = false;
        emit Unpaused(msg.sender);
    }

    function setAddressFrozen(address wallet, bool freeze) external onlyAgent {
        _frozen[wallet] = freeze;
        emit AddressFrozen(wallet, freeze, msg.sender);
    }

    function freezePartialTokens(address wallet, uint256 amount) external onlyAgent {
        uint256 balance = balanceOf(wallet);
        uint256 frozen = _frozenTokens[wallet] + amount;
        if (frozen > balance) revert AmountExceedsBalance(wallet, balance, frozen);
        _frozenTokens[wallet] = frozen;
        emit TokensFrozen(wallet, amount);
    }

    function unfreezePartialTokens(address wallet, uint256 amount) external onlyAgent {
        uint256 frozen = _frozenTokens[wallet];
        if (amount > frozen) revert AmountExceedsFrozen(wallet, frozen, amount);
        _frozenTokens[wallet] = frozen - amount;
        emit TokensUnfrozen(wallet, amount);
    }

    function mint(address to, uint256 amount) external onlyAgent {
        if (!_identityRegistry.isVerified(to)) revert RecipientNotVerified(to);
        if (!_compliance.canTransfer(address(0), to, amount)) revert ComplianceRejected(address(0), to, amount);
        _mint(to, amount);
        _compliance.created(to, amount);
    }

    /// @dev Burning may eat into frozen tokens; the frozen amount shrinks accordingly (as in ERC-3643).
    function burn(address from, uint256 amount) external onlyAgent {
        uint256 balance = balanceOf(from);
        if (amount > balance) revert AmountExceedsBalance(from, balance, amount);
        uint256 free = balance - _frozenTokens[from];
        if (amount > free) {
            uint256 unfreeze = amount - free;
            _frozenTokens[from] -= unfreeze;
            emit TokensUnfrozen(from, unfreeze);
        }
        _burn(from, amount);
        _compliance.destroyed(from, amount);
    }

    /// @dev Agent transfer that bypasses freezes and pause (recovery, court orders) but still
    /// requires a verified recipient.
    function forcedTransfer(address from, address to, uint256 amount) external onlyAgent returns (bool) {
        uint256 balance = balanceOf(from);
        if (amount > balance) revert AmountExceedsBalance(from, balance, amount);
        if (!_identityRegistry.isVerified(to)) revert RecipientNotVerified(to);
        uint256 free = balance - _frozenTokens[from];
        if (amount > free) {
            uint256 unfreeze = amount - free;
            _frozenTokens[from] -= unfreeze;
            emit TokensUnfrozen(from, unfreeze);
        }
        _transfer(from, to, amount);
        _compliance.transferred(from, to, amount);
        return true;
    }

    // ---- ERC-20 transfers with ERC-3643 checks
    function transfer(address to, uint256 amount) public override returns (bool) {
        _checkTransfer(msg.sender, to, amount);
        _transfer(msg.sender, to, amount);
        _compliance.transferred(msg.sender, to, amount);
        return true;
    }

    function transferFrom(address from, address to, uint256 amount) public override returns (bool) {
        _checkTransfer(from, to, amount);
        _spendAllowance(from, msg.sender, amount);
        _transfer(from, to, amount);
        _compliance.transferred(from, to, amount);
        return true;
    }

    function _checkTransfer(address from, address to, uint256 amount) private view {
        if (_paused) revert TokenPaused();
        if (_frozen[from]) revert WalletFrozen(from);
        if (_frozen[to]) revert WalletFrozen(to);
        uint256 balance = balanceOf(from);
        uint256 frozen = _frozenTokens[from];
        uint256 free = balance > frozen ? balance - frozen : 0;
        if (amount > free) revert InsufficientUnfrozenBalance(from, free, amount);
        if (!_identityRegistry.isVerified(to)) revert RecipientNotVerified(to);
        if (!_compliance.canTransfer(from, to, amount)) revert ComplianceRejected(from, to, amount);
    }

    function _setIdentityRegistry(address identityRegistry_) private {
        if (identityRegistry_ == address(0)) revert ZeroAddress();
        _identityRegistry = IDemoIdentityRegistry(identityRegistry_);
        emit IdentityRegistryAdded(identityRegistry_);
    }

    function _setCompliance(address compliance_) private {
        if (compliance_ == address(0)) revert ZeroAddress();
        _compliance = IDemoCompliance(compliance_);
        emit ComplianceAdded(compliance_);
    }
}
