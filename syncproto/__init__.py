"""Sans-IO sync session: messages (CBOR), state machines, the planner."""
