"""Limits of the API, in one place for the code, its messages and the OpenAPI document."""

# The app allows 1 MiB (forms with many fields); API bodies are small JSON documents.
API_MAX_BODY_BYTES = 64 * 1024
API_MAX_BODY_TEXT = f"{API_MAX_BODY_BYTES // 1024} KiB"
