"""OAuth 2 / OpenID Connect / SMART App Launch, framework-free (``web/oauth.py`` adapts it to HTTP)."""
