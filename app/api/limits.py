"""Limits of the API, in one place for the code, its messages and the OpenAPI document."""

# The app allows 1 MiB (forms with many fields). API bodies are JSON documents; the
# largest are workflow definitions (up to 200 nodes with their templates).
API_MAX_BODY_BYTES = 512 * 1024
API_MAX_BODY_TEXT = f"{API_MAX_BODY_BYTES // 1024} KiB"
