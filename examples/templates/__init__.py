"""Template examples (uTemplate and Jinja); see the docstring of each module."""
