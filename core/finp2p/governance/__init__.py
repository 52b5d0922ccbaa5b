"""What a governance node does: certify, admit organizations, revoke, and (later) keep the registrar."""
