// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {Ownable} from "@openzeppelin/contracts/access/Ownable.sol";
import {AgentRoles} from "./AgentRoles.sol";

/// @notice Minimal ERC-3643-compatible identity registry for the demo OMN note.
/// A registered wallet is verified: the demo has no claim topics (documented in the README); the
/// `identity` is whatever address the operator records for the investor (an ONCHAINID in production).
contract DemoIdentityRegistry is AgentRoles {
    struct Investor {
        address identity;
        uint16 country;
    }

    mapping(address => Investor) private _investors;

    event IdentityRegistered(address indexed investorAddress, address indexed identity);
    event IdentityRemoved(address indexed investorAddress, address indexed identity);
    event IdentityUpdated(address indexed oldIdentity, address indexed newIdentity);
    event CountryUpdated(address indexed investorAddress, uint16 indexed country);

    error AlreadyRegistered(address investorAddress);
    error NotRegistered(address investorAddress);

    constructor(address owner_) Ownable(owner_) {}

    function registerIdentity(address user, address identity_, uint16 country) external onlyAgent {
        if (user == address(0) || identity_ == address(0)) revert ZeroAddress();
        if (_investors[user].identity != address(0)) revert AlreadyRegistered(user);
        _investors[user] = Investor(identity_, country);
        emit IdentityRegistered(user, identity_);
        emit CountryUpdated(user, country);
    }

    function deleteIdentity(address user) external onlyAgent {
        address old = _investors[user].identity;
        if (old == address(0)) revert NotRegistered(user);
        delete _investors[user];
        emit IdentityRemoved(user, old);
    }

    function updateIdentity(address user, address identity_) external onlyAgent {
        address old = _investors[user].identity;
        if (old == address(0)) revert NotRegistered(user);
        if (identity_ == address(0)) revert ZeroAddress();
        _investors[user].identity = identity_;
        emit IdentityUpdated(old, identity_);
    }

    function updateCountry(address user, uint16 country) external onlyAgent {
        if (_investors[user].identity == address(0)) revert NotRegistered(user);
        _investors[user].country = country;
        emit CountryUpdated(user, country);
    }

    function contains(address user) public view returns (bool) {
        return _investors[user].identity != address(0);
    }

    function isVerified(address user) external view returns (bool) {
        return contains(user);
    }

    function identity(address user) external view returns (address) {
        return _investors[user].identity;
    }

    function investorCountry(address user) external view returns (uint16) {
        return _investors[user].country;
    }
}
