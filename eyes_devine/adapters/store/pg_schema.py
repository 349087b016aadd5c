"""The PostgreSQL schema as a chain of migrations, apart from SQLite's: the same columns, PostgreSQL's types.

Version N+1 is version N plus one entry, never edited once released.  The
version lives in ``eyes_devine_schema``, one row.  Beyond SQLite's columns,
each record has an idempotency key, ``(run_key, seq)``: the run that captured
it and its place in that run.  A batch retried after a commit whose outcome was
unknown (the connection broke at COMMIT) inserts nothing twice.
"""

from __future__ import annotations

MIGRATIONS: tuple[tuple[str, ...], ...] = (
    (
        "CREATE TABLE eyes_devine_schema (version integer NOT NULL)",
        "INSERT INTO eyes_devine_schema VALUES (0)",
        """CREATE TABLE exchanges (
            id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            run_key uuid NOT NULL,
            seq bigint NOT NULL,
            bucket text NOT NULL,
            ts double precision NOT NULL,
            interface text NOT NULL,
            client_ip text NOT NULL,
            client_port integer NOT NULL,
            server_ip text NOT NULL,
            server_port integer NOT NULL,
            method text NOT NULL,
            target text NOT NULL,
            host text,
            http_version text NOT NULL,
            status integer,
            reason text,
            latency_ms double precision,
            duration_ms double precision,
            request_bytes bigint NOT NULL,
            response_bytes bigint NOT NULL,
            user_agent text,
            content_type text,
            flags text NOT NULL,
            container text,
            client_container text,
            container_id text,
            client_container_id text,
            alerts text NOT NULL,
            country text,
            city text,
            latitude double precision,
            longitude double precision,
            reputation text,
            observer text NOT NULL,
            UNIQUE (run_key, seq)
        )""",
        # --keep trims per (observer, bucket) by id; --retain and --since walk ts.
        "CREATE INDEX exchanges_observer_bucket_id ON exchanges (observer, bucket, id)",
        "CREATE INDEX exchanges_ts ON exchanges (ts)",
        "CREATE INDEX exchanges_alerted ON exchanges (ts) WHERE alerts <> ''",
        """CREATE TABLE flows (
            id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            run_key uuid NOT NULL,
            seq bigint NOT NULL,
            bucket text NOT NULL,
            ts_first double precision NOT NULL,
            ts_last double precision NOT NULL,
            interface text NOT NULL,
            transport text NOT NULL,
            protocol text NOT NULL,
            client_ip text NOT NULL,
            client_port integer NOT NULL,
            server_ip text NOT NULL,
            server_port integer NOT NULL,
            client_packets bigint NOT NULL,
            client_bytes bigint NOT NULL,
            server_packets bigint NOT NULL,
            server_bytes bigint NOT NULL,
            sni text,
            detail text,
            ended text NOT NULL,
            container text,
            client_container text,
            container_id text,
            client_container_id text,
            country text,
            city text,
            latitude double precision,
            longitude double precision,
            reputation text,
            observer text NOT NULL,
            UNIQUE (run_key, seq)
        )""",
        "CREATE INDEX flows_observer_bucket_id ON flows (observer, bucket, id)",
        "CREATE INDEX flows_ts_last ON flows (ts_last)",
        """CREATE TABLE monitor_status (
            observer text PRIMARY KEY,
            updated double precision NOT NULL,
            started double precision NOT NULL,
            pid bigint NOT NULL,
            host text NOT NULL,
            version text NOT NULL,
            sniffers text NOT NULL,
            stopped boolean NOT NULL
        )""",
    ),
    (
        # gRPC calls over HTTP/2: the status and message from the trailers, and messages each way.
        "ALTER TABLE exchanges ADD COLUMN grpc_status integer",
        "ALTER TABLE exchanges ADD COLUMN grpc_message text",
        "ALTER TABLE exchanges ADD COLUMN request_messages bigint",
        "ALTER TABLE exchanges ADD COLUMN response_messages bigint",
    ),
    (
        # The container inventory, as SQLite's schema 8 has it (see store/inventory.py): upserted by its natural
        # key, so it needs no (run_key, seq).
        """CREATE TABLE containers (
            id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            observer text NOT NULL,
            container_id text NOT NULL,
            name text NOT NULL,
            image text NOT NULL,
            compose_project text,
            compose_service text,
            addresses text NOT NULL,
            gateways text NOT NULL,
            published text NOT NULL,
            ports text NOT NULL,
            started double precision NOT NULL,
            ended double precision,
            UNIQUE (observer, container_id, started)
        )""",
        "CREATE INDEX containers_observer_ended ON containers (observer, ended)",
    ),
)
SCHEMA_VERSION = len(MIGRATIONS)
TABLES = ("exchanges", "flows", "monitor_status", "containers", "eyes_devine_schema")
