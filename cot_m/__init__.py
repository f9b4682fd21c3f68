"""CoT-M: templates that turn a record and its process annotation into questions and reasoning.

The engine arrives with issue 4; this package holds its place in the layout.
"""
