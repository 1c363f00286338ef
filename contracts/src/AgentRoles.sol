// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {Ownable} from "@openzeppelin/contracts/access/Ownable.sol";

/// @notice Owner-managed agent set, with the event names ERC-3643 tooling expects.
abstract contract AgentRoles is Ownable {
    mapping(address => bool) private _agents;

    event AgentAdded(address indexed _agent);
    event AgentRemoved(address indexed _agent);

    error NotAgent(address account);
    error ZeroAddress();

    modifier onlyAgent() {
        if (!_agents[msg.sender]) revert NotAgent(msg.sender);
        _;
    }

    function isAgent(address account) public view returns (bool) {
        return _agents[account];
    }

    function addAgent(address agent) external onlyOwner {
        if (agent == address(0)) revert ZeroAddress();
        if (!_agents[agent]) {
            _agents[agent] = true;
            emit AgentAdded(agent);
        }
    }

    function removeAgent(address agent) external onlyOwner {
        if (_agents[agent]) {
            _agents[agent] = false;
            emit AgentRemoved(agent);
        }
    }
}
