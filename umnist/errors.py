"""The one exception type users see.

Every check on user input raises `UmnistError` with a single line that names the file or value and what is
wrong with it. The CLI prints that line and exits with status 2 instead of showing a traceback.
"""


class UmnistError(Exception):
    """A problem with the user's input (file, table, weights, config), described in one line."""
