"""The web review desk (``politico admin``): a server-rendered Starlette app over the log."""
