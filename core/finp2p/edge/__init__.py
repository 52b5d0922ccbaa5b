"""The node's edges: every value from outside (a peer, an application, a router, a bundle, a file) passes one of
these checks before anything else reads it, and each kind of value has exactly one.

- :mod:`~finp2p.edge.json_input`: JSON bounded in size and nesting depth before and while it is parsed.
- :mod:`~finp2p.edge.identifiers`: identifiers matched whole: ASCII, no control characters, bounded.
- :mod:`~finp2p.edge.numbers`: quantities as ASCII decimals within a ledger's range; times within a sane range.
- :mod:`~finp2p.edge.http`: what every HTTP server of the node enforces: header, body and idle timeouts, a bound
  on connections per client address, declared body sizes refused before the body is read.
- :mod:`~finp2p.edge.ratelimit`: requests per key in a sliding window (registrations per address and per org id).
- :mod:`~finp2p.edge.files`: data directories 0700 and their files 0600 from the moment they exist.
- :mod:`~finp2p.edge.recursion`: the interpreter's recursion limit put back where Python keeps it when a library
  (py-evm, py_ecc) raised it at import.

This package sits on the bottom floor beside ``errors`` and ``identity``: it imports nothing else of the node.
"""
