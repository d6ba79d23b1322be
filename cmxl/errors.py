"""The one exception type for mistakes a user can make (bad config, missing data, bad paths).

The CLI turns it into a single line on stderr and exit status 2; everything else is a bug and keeps its traceback.
It subclasses ValueError so library callers can catch it the usual way.
"""


class UserError(ValueError):
    pass
