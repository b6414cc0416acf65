"""The project's version, in a module of its own so that any module can import it cheaply."""

__version__ = "0.1.0"
