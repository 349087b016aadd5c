"""HTTP/1.x exchanges from the two reassembled byte streams of one TCP connection.

See :mod:`eyes_devine.core.http.connection` for how requests pair with
responses, and what happens around gaps, HEAD, upgrades and non-HTTP streams.
"""
