"""Pure values and rules: no I/O, no clock reads, no textual.

Everything here takes `now` (and any timezone) as a parameter so that the same inputs always give
the same answer; `tests/domain/test_import_hygiene.py` proves nothing heavier gets imported.
"""
