"""Modules that attack the certifier when imported (tests/test_hostile.py). Each is imported
only by name, as a backend; none may be imported by the test process itself."""
