"""Downloaders: each provider turns a region and a date range into file references and fetches
them, through one robust fetcher, into the layout the readers in :mod:`lstfill.sources` expect
(``resources/{region}/raw/{source}/``)."""
