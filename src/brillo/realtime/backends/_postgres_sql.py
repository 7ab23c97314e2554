"""SQL of the PostgreSQL backend: the schema, its functions and the statements the backend runs.

Every name starts with the backend's prefix (``brillo_rt_`` by default). The tables:

* ``<prefix>topics``: one row per topic with history: its epoch and its last position.
* ``<prefix>messages``: the retained history (``pos`` set), and short-lived copies of payloads
  too large for a NOTIFY (``pos`` NULL, removed after a minute).
* ``<prefix>presence`` (unlogged: presence is rebuilt by the heartbeats after a crash): one row
  per connection in a room, with the node that keeps it alive and its expiry.

Notifications, all on the one channel ``<prefix>events``, are text:

* a message: ``<kind><id>|<epoch>|<pos>|<len(topic)>|<len(exclude)>|<topic><exclude><body>``,
  kind ``t`` (text, the body is the text), ``b`` (bytes, base64), ``u`` (text holding NUL,
  base64 of its UTF-8), or ``r`` (too large: no body, the payload is row ``<id>`` of the
  messages table). Epoch and pos are empty and 0 without history; the id makes every
  notification of a transaction unique (PostgreSQL folds identical ones).
* a presence change: ``p<j|l><0|1>|<len(room)>|<room><entry json>`` (1: an expired leave).
"""

from __future__ import annotations

__all__ = ["Statements"]

#: NOTIFY refuses payloads of 8000 bytes or more.
NOTIFY_LIMIT = 8000
#: Seconds a copy of a payload too large for NOTIFY is kept for the listeners to fetch.
SPILL_SECONDS = 60

_SCHEMA = """
CREATE TABLE IF NOT EXISTS {p}topics (
    topic text PRIMARY KEY,
    epoch text NOT NULL,
    pos bigint NOT NULL
);
CREATE TABLE IF NOT EXISTS {p}messages (
    id bigserial PRIMARY KEY,
    topic text NOT NULL,
    pos bigint,
    kind "char" NOT NULL,
    exclude text NOT NULL,
    payload bytea NOT NULL,
    created timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX IF NOT EXISTS {p}messages_topic_pos
    ON {p}messages (topic, pos) WHERE pos IS NOT NULL;
CREATE INDEX IF NOT EXISTS {p}messages_spilled
    ON {p}messages (created) WHERE pos IS NULL;
CREATE UNLOGGED TABLE IF NOT EXISTS {p}presence (
    room text NOT NULL,
    connection text NOT NULL,
    node text NOT NULL,
    info text NOT NULL,
    expires timestamptz NOT NULL,
    joined timestamptz NOT NULL DEFAULT clock_timestamp(),
    PRIMARY KEY (room, connection)
);
CREATE INDEX IF NOT EXISTS {p}presence_node ON {p}presence (node);
CREATE INDEX IF NOT EXISTS {p}presence_expires ON {p}presence (expires);

CREATE OR REPLACE FUNCTION {p}publish(
    p_topic text, p_kind text, p_exclude text, p_body text, p_history boolean,
    p_size integer, p_ttl double precision, p_channel text
) RETURNS TABLE (out_epoch text, out_pos bigint)
LANGUAGE plpgsql AS $fn$
DECLARE
    v_epoch text := '';
    v_pos bigint := 0;
    v_id bigint := 0;
    v_stored "char" := CASE WHEN p_kind = 'b' THEN 'b' ELSE 't' END;
    v_data bytea;
    v_head text;
    v_note text;
BEGIN
    IF p_history THEN
        -- the row lock orders the publishers of one topic: positions follow commit order
        INSERT INTO {p}topics AS t (topic, epoch, pos)
        VALUES (p_topic, substr(md5(random()::text || clock_timestamp()::text), 1, 12), 1)
        ON CONFLICT (topic) DO UPDATE SET pos = t.pos + 1
        RETURNING t.epoch, t.pos INTO v_epoch, v_pos;
        IF p_size > 0 THEN
            v_data := CASE WHEN p_kind = 't' THEN convert_to(p_body, 'UTF8')
                           ELSE decode(p_body, 'base64') END;
            INSERT INTO {p}messages (topic, pos, kind, exclude, payload)
            VALUES (p_topic, v_pos, v_stored, p_exclude, v_data);
            DELETE FROM {p}messages
            WHERE topic = p_topic AND pos IS NOT NULL AND pos <= v_pos - p_size;
            IF p_ttl IS NOT NULL THEN
                DELETE FROM {p}messages
                WHERE topic = p_topic AND pos IS NOT NULL
                  AND created < now() - make_interval(secs => p_ttl);
            END IF;
        END IF;
    ELSE
        v_id := nextval('{p}messages_id_seq');
    END IF;
    v_head := v_id || '|' || v_epoch || '|' || v_pos || '|' || length(p_topic) || '|'
        || length(p_exclude) || '|' || p_topic || p_exclude;
    v_note := p_kind || v_head || p_body;
    IF octet_length(v_note) >= {limit} THEN
        IF v_data IS NULL THEN
            v_data := CASE WHEN p_kind = 't' THEN convert_to(p_body, 'UTF8')
                           ELSE decode(p_body, 'base64') END;
        END IF;
        INSERT INTO {p}messages (topic, pos, kind, exclude, payload)
        VALUES (p_topic, NULL, v_stored, p_exclude, v_data) RETURNING id INTO v_id;
        v_note := 'r' || v_id || '|' || v_epoch || '|' || v_pos || '|' || length(p_topic)
            || '|' || length(p_exclude) || '|' || p_topic || p_exclude;
    END IF;
    PERFORM pg_notify(p_channel, v_note);
    RETURN QUERY SELECT v_epoch, v_pos;
END
$fn$;

CREATE OR REPLACE FUNCTION {p}presence_refresh(
    p_node text, p_ttl double precision, p_channel text,
    p_rooms text[], p_connections text[], p_infos text[]
) RETURNS integer
LANGUAGE plpgsql AS $fn$
DECLARE
    v_count integer;
    v_row record;
BEGIN
    UPDATE {p}presence SET expires = now() + make_interval(secs => p_ttl) WHERE node = p_node;
    GET DIAGNOSTICS v_count = ROW_COUNT;
    FOR v_row IN
        INSERT INTO {p}presence (room, connection, node, info, expires)
        SELECT r, c, p_node, i, now() + make_interval(secs => p_ttl)
        FROM unnest(p_rooms, p_connections, p_infos) AS e(r, c, i)
        ON CONFLICT (room, connection) DO NOTHING
        RETURNING room, info
    LOOP
        PERFORM pg_notify(p_channel, 'pj0|' || length(v_row.room) || '|' || v_row.room
            || v_row.info);
        v_count := v_count + 1;
    END LOOP;
    FOR v_row IN DELETE FROM {p}presence WHERE expires < now() RETURNING room, info LOOP
        PERFORM pg_notify(p_channel, 'pl1|' || length(v_row.room) || '|' || v_row.room
            || v_row.info);
    END LOOP;
    DELETE FROM {p}messages
    WHERE pos IS NULL AND created < now() - make_interval(secs => {spill});
    RETURN v_count;
END
$fn$;
"""


class Statements:
    """The statements of one prefix, built once per backend."""

    __slots__ = (
        "channel",
        "gap",
        "history",
        "lock_key",
        "position",
        "presence_join",
        "presence_leave",
        "presence_list",
        "presence_refresh",
        "publish",
        "schema",
        "spilled",
        "topic_position",
    )

    def __init__(self, prefix: str) -> None:
        p = prefix
        self.channel = f"{p}events"
        #: Serialises schema creation between processes starting together.
        self.lock_key = int.from_bytes(p.encode()[:8].ljust(8, b"_"), "big") & 0x7FFFFFFFFFFFFFFF
        self.schema = _SCHEMA.format(p=p, limit=NOTIFY_LIMIT, spill=SPILL_SECONDS)
        self.publish = f"SELECT out_epoch, out_pos FROM {p}publish($1, $2, $3, $4, $5, $6, $7, $8)"
        ttl = "($3::float8 IS NULL OR created >= now() - make_interval(secs => $3::float8))"
        # One statement, so one snapshot: the position and the messages agree.
        self.history = f"""
            SELECT t.epoch, t.pos AS current, f.first, m.pos, m.kind::text AS kind, m.payload
            FROM (SELECT $1::text AS topic) AS q
            LEFT JOIN {p}topics AS t ON t.topic = q.topic
            LEFT JOIN LATERAL (
                SELECT min(pos) AS first FROM {p}messages
                WHERE topic = q.topic AND pos IS NOT NULL AND {ttl}
            ) AS f ON true
            LEFT JOIN LATERAL (
                SELECT pos, kind, payload FROM {p}messages
                WHERE topic = q.topic AND pos > $2 AND {ttl}
            ) AS m ON true
            ORDER BY m.pos"""
        #: Makes sure a topic has a row (an epoch) before its history is read the first time.
        self.position = f"""
            INSERT INTO {p}topics (topic, epoch, pos)
            VALUES ($1, substr(md5(random()::text || clock_timestamp()::text), 1, 12), 0)
            ON CONFLICT (topic) DO NOTHING"""
        self.topic_position = f"SELECT epoch, pos FROM {p}topics WHERE topic = $1"
        # What the listener missed while it was away: per topic, the messages after the last
        # position it delivered (all retained ones when the epoch changed meanwhile).
        self.gap = f"""
            SELECT t.topic, t.epoch, m.pos, m.kind::text, m.exclude, m.payload
            FROM unnest($1::text[], $2::text[], $3::bigint[]) AS s(topic, epoch, pos)
            JOIN {p}topics AS t ON t.topic = s.topic
            JOIN {p}messages AS m ON m.topic = s.topic AND m.pos IS NOT NULL
                AND m.pos > CASE WHEN t.epoch = s.epoch THEN s.pos ELSE 0 END
            ORDER BY t.topic, m.pos"""
        self.spilled = f"SELECT kind::text, payload FROM {p}messages WHERE id = $1"
        self.presence_join = f"""
            WITH e AS (
                INSERT INTO {p}presence (room, connection, node, info, expires)
                VALUES ($1, $2, $3, $4, now() + make_interval(secs => $5::float8))
                ON CONFLICT (room, connection) DO UPDATE
                SET node = EXCLUDED.node, info = EXCLUDED.info, expires = EXCLUDED.expires
                RETURNING room, info
            )
            SELECT pg_notify($6, 'pj0|' || length(e.room) || '|' || e.room || e.info) FROM e"""
        self.presence_leave = f"""
            WITH e AS (
                DELETE FROM {p}presence WHERE room = $1 AND connection = $2 RETURNING room, info
            )
            SELECT pg_notify($3, 'pl0|' || length(e.room) || '|' || e.room || e.info) FROM e"""
        self.presence_list = f"""
            SELECT info FROM {p}presence WHERE room = $1 AND expires >= now() ORDER BY joined"""
        self.presence_refresh = f"SELECT {p}presence_refresh($1, $2, $3, $4, $5, $6)"
