"""The database schema as a chain of migrations: version N+1 is version N plus one entry, never edited."""

from __future__ import annotations

# The schema: each entry brings the database from version N to N+1 and is never
# edited once released; add a new entry instead.  Columns mirror Exchange, with
# flags space-joined (they are identifiers from a fixed vocabulary) and a bucket
# column so trimming and reloading walk one index.
MIGRATIONS: tuple[tuple[str, ...], ...] = (
    (
        """CREATE TABLE exchanges (
            id INTEGER PRIMARY KEY,
            bucket TEXT NOT NULL,
            ts REAL NOT NULL,
            interface TEXT NOT NULL,
            client_ip TEXT NOT NULL,
            client_port INTEGER NOT NULL,
            server_ip TEXT NOT NULL,
            server_port INTEGER NOT NULL,
            method TEXT NOT NULL,
            target TEXT NOT NULL,
            host TEXT,
            http_version TEXT NOT NULL,
            status INTEGER,
            reason TEXT,
            latency_ms REAL,
            request_bytes INTEGER NOT NULL,
            response_bytes INTEGER NOT NULL,
            user_agent TEXT,
            content_type TEXT,
            flags TEXT NOT NULL,
            container TEXT,
            client_container TEXT,
            container_id TEXT,
            client_container_id TEXT
        )""",
        "CREATE INDEX exchanges_bucket_id ON exchanges (bucket, id)",
        "CREATE INDEX exchanges_ts ON exchanges (ts)",
    ),
    (
        # Security monitoring: rule ids (space-joined like flags), and where the public end is and how it is rated.
        "ALTER TABLE exchanges ADD COLUMN alerts TEXT NOT NULL DEFAULT ''",
        "ALTER TABLE exchanges ADD COLUMN country TEXT",
        "ALTER TABLE exchanges ADD COLUMN city TEXT",
        "ALTER TABLE exchanges ADD COLUMN latitude REAL",
        "ALTER TABLE exchanges ADD COLUMN longitude REAL",
        "ALTER TABLE exchanges ADD COLUMN reputation TEXT",
        "CREATE INDEX exchanges_alerted ON exchanges (ts) WHERE alerts != ''",
    ),
    (
        # Flows beyond HTTP (--all-traffic): columns mirror eyes_devine.core.flows.Flow; bucketed like exchanges.
        """CREATE TABLE flows (
            id INTEGER PRIMARY KEY,
            bucket TEXT NOT NULL,
            ts_first REAL NOT NULL,
            ts_last REAL NOT NULL,
            interface TEXT NOT NULL,
            transport TEXT NOT NULL,
            protocol TEXT NOT NULL,
            client_ip TEXT NOT NULL,
            client_port INTEGER NOT NULL,
            server_ip TEXT NOT NULL,
            server_port INTEGER NOT NULL,
            client_packets INTEGER NOT NULL,
            client_bytes INTEGER NOT NULL,
            server_packets INTEGER NOT NULL,
            server_bytes INTEGER NOT NULL,
            sni TEXT,
            detail TEXT,
            ended TEXT NOT NULL,
            container TEXT,
            client_container TEXT,
            container_id TEXT,
            client_container_id TEXT,
            country TEXT,
            city TEXT,
            latitude REAL,
            longitude REAL,
            reputation TEXT
        )""",
        "CREATE INDEX flows_bucket_id ON flows (bucket, id)",
        "CREATE INDEX flows_ts_last ON flows (ts_last)",
    ),
    (
        # The whole time on the wire, first request byte to last response byte (a span's end, for OTLP export).
        "ALTER TABLE exchanges ADD COLUMN duration_ms REAL",
    ),
    (
        # What the running `run` last said of itself (records.MonitorStatus), for `eyes-devine health`: one row.
        """CREATE TABLE monitor_status (
            id INTEGER PRIMARY KEY CHECK (id = 1),
            updated REAL NOT NULL,
            started REAL NOT NULL,
            pid INTEGER NOT NULL,
            host TEXT NOT NULL,
            version TEXT NOT NULL,
            sniffers TEXT NOT NULL,
            stopped INTEGER NOT NULL
        )""",
    ),
    (
        # The host that captured each record (--observer): --keep holds per (observer, container), so the
        # trims' index has the observer too (rows from before are labelled with the observer of the run that
        # upgrades: the file's one writer).
        "ALTER TABLE exchanges ADD COLUMN observer TEXT",
        "ALTER TABLE flows ADD COLUMN observer TEXT",
        "DROP INDEX exchanges_bucket_id",
        "CREATE INDEX exchanges_bucket_observer_id ON exchanges (bucket, observer, id)",
        "DROP INDEX flows_bucket_id",
        "CREATE INDEX flows_bucket_observer_id ON flows (bucket, observer, id)",
    ),
    (
        # gRPC calls over HTTP/2: the status and message from the trailers, and messages each way.
        "ALTER TABLE exchanges ADD COLUMN grpc_status INTEGER",
        "ALTER TABLE exchanges ADD COLUMN grpc_message TEXT",
        "ALTER TABLE exchanges ADD COLUMN request_messages INTEGER",
        "ALTER TABLE exchanges ADD COLUMN response_messages INTEGER",
    ),
    (
        # The container inventory (records.ContainerTenure; see store/inventory.py): which container held which
        # addresses and published ports, from when to when, for `read --db`.  Lists are space-joined.
        """CREATE TABLE containers (
            id INTEGER PRIMARY KEY,
            observer TEXT NOT NULL,
            container_id TEXT NOT NULL,
            name TEXT NOT NULL,
            image TEXT NOT NULL,
            compose_project TEXT,
            compose_service TEXT,
            addresses TEXT NOT NULL,
            gateways TEXT NOT NULL,
            published TEXT NOT NULL,
            ports TEXT NOT NULL,
            started REAL NOT NULL,
            ended REAL,
            UNIQUE (observer, container_id, started)
        )""",
        "CREATE INDEX containers_observer_ended ON containers (observer, ended)",
    ),
)
SCHEMA_VERSION = len(MIGRATIONS)
READABLE_SINCE = 4
"""The oldest schema the readers (`requests`, `alerts`, `flows`, `watch --attach`) query: later ones only added
the status row, which `health` asks for itself, and columns that read as NULL before they existed
(:data:`COLUMNS_SINCE`; the observer filter then finds nothing).  So a database an older `run` still writes
stays readable after an upgrade."""
OBSERVER_SINCE = 6
"""The first schema with the observer column."""
COLUMNS_SINCE = {"observer": OBSERVER_SINCE, "grpc_status": 7, "grpc_message": 7, "request_messages": 7,
                 "response_messages": 7}
"""Columns the readers ask for that an older schema lacks (they read as NULL there), and the schema that added
each."""
