"""Links chosen by URL scheme, framing, and the TLS layer that runs over any of them."""
