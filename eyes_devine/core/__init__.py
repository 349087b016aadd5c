"""The sans-I/O core: bytes and timestamps in, records out.

``decode`` turns a captured frame into a :class:`~eyes_devine.records.Segment`;
``tcp`` reassembles each connection's two byte streams; ``http`` turns those
streams into :class:`~eyes_devine.records.Exchange` records; ``flows`` summarises
every conversation as a :class:`~eyes_devine.records.Flow`; ``engine`` wires them
for one stream of frames.  Nothing here reads a clock, the environment, a file
or a socket, and nothing imports an adapter: live capture and capture files feed
the same engine, and the tests feed it committed pcaps without privileges.
The only third-party import is httptools, in ``http``.
"""
