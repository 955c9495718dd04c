"""course: the plumbing every lesson shares, under both `minigpt` and `neurosymbolic`.

`device` picks where kernels run, `lesson` is the set-up cell's logic, `checks` is the core of the
exercise checkers, and `files` writes atomically and reads weights files with their checks.
"""
