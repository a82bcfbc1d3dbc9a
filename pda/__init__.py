"""The PDA peer: contact stores (vdir), per-card sync state, the server."""
