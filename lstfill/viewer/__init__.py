"""The offline HTML viewer of the workflow's products."""
