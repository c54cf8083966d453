"""scalelint: find the code that collapses a Python web backend under real traffic."""

__version__ = "0.1.0"
