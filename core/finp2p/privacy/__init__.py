"""Who may see what: ACL backends, the private data store, push and pull sharing."""
