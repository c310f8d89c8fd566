"""Console pages for the chatbot and the menu (to be built)."""

from flask import Flask


def init_app(app: Flask) -> None:
    return None
