"""ASGI entry point for production servers: ``uvicorn hygie.web.asgi:app`` (settings from the environment)."""

from hygie.web.app import create_app

app = create_app()
