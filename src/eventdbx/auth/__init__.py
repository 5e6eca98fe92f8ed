"""Ed25519 keys, JWT issue and verification, action/resource scopes."""
