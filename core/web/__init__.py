"""The web app: the feed as pages, a moderator dashboard, sign-in links from chat and private feeds.

It extends the aiohttp application of ``core.feed.http`` (one port for feeds and pages). Every write a page
makes runs a chat command through the router, so authorisation, validation and audit exist once.
"""
