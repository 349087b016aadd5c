"""Terminal presentation (rich): the only package that imports rich."""
