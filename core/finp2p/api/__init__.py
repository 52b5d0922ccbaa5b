"""The REST API an organization's own applications call: its own port, bearer tokens, an OpenAPI document."""
