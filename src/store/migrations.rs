//! Schema migrations, applied in order at open and tracked in `PRAGMA user_version`. Append new steps;
//! never edit a step that has shipped.

use rusqlite::Connection;

const STEPS: &[&str] = &[
    // 1: the first schema.
    r#"
    CREATE TABLE partners (
        id          TEXT PRIMARY KEY,
        name        TEXT NOT NULL,
        priority    INTEGER NOT NULL DEFAULT 0
    );

    -- Cache validators per feed, so an unchanged feed costs one conditional request.
    CREATE TABLE feeds (
        partner_id      TEXT NOT NULL,
        feed_key        TEXT NOT NULL,
        source          TEXT NOT NULL,
        etag            TEXT,
        last_modified   TEXT,
        last_fetched_at TEXT,
        PRIMARY KEY (partner_id, feed_key)
    );

    -- Every partner record as last seen, kept after deletion so provenance and ids survive.
    CREATE TABLE source_records (
        id                INTEGER PRIMARY KEY,
        partner_id        TEXT NOT NULL,
        feed_key          TEXT NOT NULL,
        kind              TEXT NOT NULL,
        source_id         TEXT NOT NULL,
        content_hash      TEXT NOT NULL,
        payload           TEXT NOT NULL,
        url               TEXT,
        source_updated_at TEXT,
        first_seen        TEXT NOT NULL,
        last_seen         TEXT NOT NULL,
        changed_at        TEXT NOT NULL,
        deleted_at        TEXT,
        entity_id         TEXT,
        UNIQUE (partner_id, feed_key, source_id)
    );
    CREATE INDEX source_records_live ON source_records (kind) WHERE deleted_at IS NULL;
    CREATE INDEX source_records_entity ON source_records (entity_id);

    -- Canonical (merged) organisations and events; `body` is the published JSON.
    CREATE TABLE entities (
        id             TEXT PRIMARY KEY,
        kind           TEXT NOT NULL,
        body           TEXT NOT NULL,
        content_hash   TEXT NOT NULL,
        sort_key       TEXT NOT NULL,
        search_text    TEXT NOT NULL,
        categories     TEXT NOT NULL,
        postcode_area  TEXT,
        start_utc      INTEGER,
        end_utc        INTEGER,
        recurring      INTEGER NOT NULL DEFAULT 0,
        version        INTEGER NOT NULL DEFAULT 1,
        -- The entity's latest change number: the RPDE change feed orders by it.
        change_number  INTEGER NOT NULL DEFAULT 0,
        created_at     TEXT NOT NULL,
        updated_at     TEXT NOT NULL,
        deleted_at     TEXT,
        merged_into    TEXT
    );
    CREATE INDEX entities_orgs ON entities (kind, sort_key, id) WHERE deleted_at IS NULL;
    CREATE INDEX entities_events ON entities (kind, start_utc, id) WHERE deleted_at IS NULL;
    CREATE INDEX entities_changes ON entities (kind, change_number);

    CREATE TABLE entity_partners (
        entity_id   TEXT NOT NULL,
        partner_id  TEXT NOT NULL,
        PRIMARY KEY (entity_id, partner_id)
    ) WITHOUT ROWID;
    CREATE INDEX entity_partners_partner ON entity_partners (partner_id, entity_id);

    -- Monotonic change log per canonical entity, for change feeds and audit.
    CREATE TABLE changes (
        change_number INTEGER PRIMARY KEY AUTOINCREMENT,
        kind          TEXT NOT NULL,
        entity_id     TEXT NOT NULL,
        action        TEXT NOT NULL,
        merged_into   TEXT,
        at            TEXT NOT NULL
    );
    CREATE INDEX changes_kind ON changes (kind, change_number);

    CREATE TABLE runs (
        id              INTEGER PRIMARY KEY,
        partner_id      TEXT NOT NULL,
        trigger         TEXT NOT NULL,
        started_at      TEXT NOT NULL,
        finished_at     TEXT,
        result          TEXT NOT NULL,
        feeds_fetched   INTEGER NOT NULL DEFAULT 0,
        feeds_unchanged INTEGER NOT NULL DEFAULT 0,
        records_seen    INTEGER NOT NULL DEFAULT 0,
        inserted        INTEGER NOT NULL DEFAULT 0,
        updated         INTEGER NOT NULL DEFAULT 0,
        unchanged       INTEGER NOT NULL DEFAULT 0,
        deleted         INTEGER NOT NULL DEFAULT 0,
        rejected        INTEGER NOT NULL DEFAULT 0,
        error           TEXT
    );
    CREATE INDEX runs_partner ON runs (partner_id, id);

    CREATE TABLE rejections (
        run_id     INTEGER NOT NULL REFERENCES runs (id),
        feed_key   TEXT NOT NULL,
        source_id  TEXT,
        reason     TEXT NOT NULL
    );
    CREATE INDEX rejections_run ON rejections (run_id);
    "#,
    // 2: admins' match decisions and the review queue of uncertain pairs.
    r#"
    -- Manual merges (same = 1) and splits (same = 0) between two partner records; they outlive syncs.
    CREATE TABLE match_decisions (
        id          INTEGER PRIMARY KEY,
        kind        TEXT NOT NULL,
        a_row       INTEGER NOT NULL,
        b_row       INTEGER NOT NULL,
        same        INTEGER NOT NULL,
        decided_at  TEXT NOT NULL,
        UNIQUE (a_row, b_row)
    );

    -- Pairs the engine was unsure about, refreshed at each resolution; ids stay while a pair does.
    CREATE TABLE review_queue (
        id          INTEGER PRIMARY KEY,
        kind        TEXT NOT NULL,
        a_row       INTEGER NOT NULL,
        b_row       INTEGER NOT NULL,
        score       REAL NOT NULL,
        evidence    TEXT NOT NULL,
        created_at  TEXT NOT NULL,
        UNIQUE (a_row, b_row)
    );
    CREATE INDEX review_queue_kind ON review_queue (kind, id);
    "#,
    // 3: kinds whose records changed in a deferred sync and await one batch resolution.
    r#"
    CREATE TABLE dirty_kinds (kind TEXT PRIMARY KEY) WITHOUT ROWID;
    "#,
    // 4: where an incremental feed (RPDE) resumes: the `next` link of its last page.
    r#"
    ALTER TABLE feeds ADD COLUMN cursor TEXT;
    "#,
    // 5: each event's VEVENT block, rendered when the event changes, so calendars concatenate.
    r#"
    ALTER TABLE entities ADD COLUMN ical TEXT;
    "#,
    // 6: calendar reads. Single events are read in start order from an index that holds their
    // blocks (no table seek per event); series and recently withdrawn events get their own
    // small indexes instead of a scan of every live event.
    r#"
    CREATE INDEX entities_calendar ON entities (kind, start_utc, id, end_utc, version, ical)
        WHERE deleted_at IS NULL AND recurring = 0;
    CREATE INDEX entities_series ON entities (kind, start_utc, id)
        WHERE deleted_at IS NULL AND recurring = 1;
    CREATE INDEX entities_withdrawn ON entities (kind, deleted_at)
        WHERE deleted_at IS NOT NULL;
    "#,
    // 7: incremental resolution. Each live record's blocking keys (hashed, with a prefix of its
    // name as `sort` for walking big blocks by window), so a sync that changed a few records
    // finds their candidate matches without reading every record of the kind; and the records
    // changed since their kind was last resolved, and the settings of the last full resolution.
    r#"
    CREATE TABLE block_keys (
        kind    INTEGER NOT NULL,
        key     INTEGER NOT NULL,
        sort    INTEGER NOT NULL,
        row_id  INTEGER NOT NULL,
        PRIMARY KEY (kind, key, sort, row_id)
    ) WITHOUT ROWID;
    -- The same keys per record (little-endian i64s), to remove a record's old keys by primary
    -- key: cheaper to keep than an index on block_keys.row_id.
    -- `features`: a fingerprint of what matching compares; an edit that leaves it alone (a new
    -- description, say) cannot change any match, so its record needs no new candidates.
    CREATE TABLE record_keys (
        row_id    INTEGER PRIMARY KEY,
        kind      INTEGER NOT NULL,
        sort      INTEGER NOT NULL,
        keys      BLOB NOT NULL,
        features  INTEGER NOT NULL
    );
    CREATE TABLE dirty_records (
        row_id  INTEGER PRIMARY KEY,
        kind    TEXT NOT NULL
    );
    -- The [dedupe] settings of each kind's last full resolution: when they change, the next
    -- resolution is full again.
    CREATE TABLE resolved_with (
        kind      TEXT PRIMARY KEY,
        settings  TEXT NOT NULL
    ) WITHOUT ROWID;
    "#,
    // 8: which entity each record belongs to moves to its own narrow table. A resolution sets
    // the link of every record it moves; on the records table that rewrote each whole row (its
    // payload included), which at a first sync was every page of the table again.
    r#"
    CREATE TABLE record_entities (
        row_id     INTEGER PRIMARY KEY,
        entity_id  TEXT NOT NULL
    );
    INSERT INTO record_entities (row_id, entity_id)
        SELECT id, entity_id FROM source_records WHERE entity_id IS NOT NULL;
    CREATE INDEX record_entities_entity ON record_entities (entity_id);
    DROP INDEX source_records_entity;
    ALTER TABLE source_records DROP COLUMN entity_id;
    -- Each entity row was entered in both listing indexes, an event under its title and an
    -- organisation under a null start; each index now holds its own kind. Events are listed
    -- through entities_calendar and entities_series; the full export of events sorts.
    DROP INDEX entities_orgs;
    DROP INDEX entities_events;
    CREATE INDEX entities_orgs ON entities (kind, sort_key, id)
        WHERE deleted_at IS NULL AND kind = 'organisations';
    "#,
    // 9: organisations are never recurring, so the calendar index (which only events are read
    // through) held an entry for every live organisation too: one more index write per
    // organisation resolved, for entries no query reads.
    r#"
    DROP INDEX entities_calendar;
    CREATE INDEX entities_calendar ON entities (kind, start_utc, id, end_utc, version, ical)
        WHERE deleted_at IS NULL AND recurring = 0 AND kind = 'events';
    "#,
    // 10: the deletion guard's memory: each feed's largest live count per day, so a partner cut
    // by a fifth at every sync is held once the cuts add up, not compared with the last sync alone.
    r#"
    CREATE TABLE feed_high_water (
        partner_id  TEXT NOT NULL,
        feed_key    TEXT NOT NULL,
        day         TEXT NOT NULL,
        live        INTEGER NOT NULL,
        PRIMARY KEY (partner_id, feed_key, day)
    );
    "#,
    // 11: the canonical ids each record held before it moved to another, oldest first, so a
    // record split off again (an admin's merge undone, a bridging record gone) takes back the
    // id it came with instead of a new one.
    r#"
    CREATE TABLE record_id_history (
        seq        INTEGER PRIMARY KEY,
        row_id     INTEGER NOT NULL,
        entity_id  TEXT NOT NULL,
        UNIQUE (row_id, entity_id)
    );
    -- Which admin merge (`POST /admin/merge`) made a "same" decision, so a split can undo that
    -- merge and no other; null for decisions from the review queue.
    ALTER TABLE match_decisions ADD COLUMN merge_id INTEGER;
    "#,
    // 12: a partner's lifecycle: when its `[[partners]]` block went from the config, when its
    // records are due to be withdrawn (after the grace period), and when they were.
    r#"
    ALTER TABLE partners ADD COLUMN removed_at TEXT;
    ALTER TABLE partners ADD COLUMN withdraw_after TEXT;
    ALTER TABLE partners ADD COLUMN withdrawn_at TEXT;
    "#,
    // 13: OpenActive SessionSeries as the partner published them, by every reference a session's
    // `superEvent` may use, so sessions of a later sync (only the session feed changed) find them.
    r#"
    CREATE TABLE rpde_series (
        partner_id  TEXT NOT NULL,
        reference   TEXT NOT NULL,
        data        TEXT NOT NULL,
        PRIMARY KEY (partner_id, reference)
    ) WITHOUT ROWID;
    "#,
    // 14: warnings beside rejections: a record that landed with a caveat (a value dropped or read
    // another way) is noted with its run, but is not a loss, so it is not counted as rejected.
    r#"
    ALTER TABLE rejections ADD COLUMN severity TEXT NOT NULL DEFAULT 'rejected';
    ALTER TABLE runs ADD COLUMN warned INTEGER NOT NULL DEFAULT 0;
    "#,
    // 15: webhook subscribers and how far each has got in the change log.
    r#"
    CREATE TABLE webhook_subscribers (
        id              TEXT PRIMARY KEY,
        source          TEXT NOT NULL,
        url             TEXT NOT NULL,
        secret          TEXT,
        kinds           TEXT NOT NULL,
        partners        TEXT NOT NULL DEFAULT '',
        acked           INTEGER NOT NULL,
        failures        INTEGER NOT NULL DEFAULT 0,
        dead_at         TEXT,
        last_error      TEXT,
        last_success_at TEXT,
        delivered       INTEGER NOT NULL DEFAULT 0,
        created_at      TEXT NOT NULL
    );
    "#,
    // 16: postcode centroids for distance search: the operator's centroid file as loaded (its
    // fingerprint, so it is read again only when it changes), an R*Tree over the centroids, and
    // organisations findable by their postcode.
    r#"
    CREATE TABLE postcode_centroids (
        id        INTEGER PRIMARY KEY,
        postcode  TEXT NOT NULL UNIQUE,
        lat       REAL NOT NULL,
        lon       REAL NOT NULL
    );
    CREATE VIRTUAL TABLE postcode_rtree USING rtree(id, min_lat, max_lat, min_lon, max_lon);
    CREATE TABLE postcode_source (
        id           INTEGER PRIMARY KEY CHECK (id = 1),
        fingerprint  TEXT NOT NULL
    );
    CREATE INDEX entities_org_postcode ON entities (json_extract(body, '$.address.postcode'))
        WHERE deleted_at IS NULL AND kind = 'organisations';
    "#,
    // 17: full-text search (FTS5) over live organisations and all events (withdrawn ones stay
    // CANCELLED in `q`-filtered calendars a while), replacing substring scans
    // of `search_text`: names, other names, identifiers (bare, unpadded and with their
    // org-id.guide scheme) and places (town or venue, postcode with and without its space).
    // Contentless: the text lives in `entities`; rows share the entity's rowid. Filled here from
    // the stored bodies, as `search_index::organisation_row` / `event_row` fill it on writes.
    r#"
    CREATE VIRTUAL TABLE organisations_search USING fts5(
        name, other_names, identifiers, places,
        content = '', contentless_delete = 1,
        tokenize = 'unicode61 remove_diacritics 2', prefix = '2 3'
    );
    CREATE VIRTUAL TABLE events_search USING fts5(
        name, other_names, identifiers, places,
        content = '', contentless_delete = 1,
        tokenize = 'unicode61 remove_diacritics 2', prefix = '2 3'
    );
    INSERT INTO organisations_search (rowid, name, other_names, identifiers, places)
    SELECT rowid,
        coalesce(json_extract(body, '$.name'), ''),
        coalesce((SELECT group_concat(value, ' ' || char(8226) || ' ')
                  FROM json_each(body, '$.alternate_names')), ''),
        concat_ws(' ',
            ch,
            CASE WHEN ch IS NULL THEN NULL
                 WHEN ch LIKE 'SC%' THEN 'GB-SC-' || ch
                 WHEN ch LIKE 'NIC%' OR ch LIKE 'XR%' THEN 'GB-NIC-' || ch
                 ELSE 'GB-CHC-' || ch END,
            co, 'GB-COH-' || co,
            CASE WHEN ltrim(co, '0') NOT IN ('', co) THEN ltrim(co, '0') END,
            CASE WHEN ltrim(co, '0') NOT IN ('', co) THEN 'GB-COH-' || ltrim(co, '0') END,
            json_extract(body, '$.identifiers.org_id')),
        concat_ws(' ', json_extract(body, '$.address.locality'), pc,
            CASE WHEN replace(pc, ' ', '') <> pc THEN replace(pc, ' ', '') END)
    FROM (SELECT rowid, body,
              json_extract(body, '$.identifiers.charity_number') AS ch,
              json_extract(body, '$.identifiers.company_number') AS co,
              json_extract(body, '$.address.postcode') AS pc
          FROM entities
          WHERE kind = 'organisations' AND deleted_at IS NULL AND merged_into IS NULL);
    INSERT INTO events_search (rowid, name, other_names, identifiers, places)
    SELECT rowid,
        coalesce(json_extract(body, '$.title'), ''),
        coalesce(json_extract(body, '$.organiser.name'), ''),
        '',
        concat_ws(' ', json_extract(body, '$.location.name'),
            json_extract(body, '$.location.address'), pc,
            CASE WHEN replace(pc, ' ', '') <> pc THEN replace(pc, ' ', '') END)
    FROM (SELECT rowid, body, json_extract(body, '$.location.postcode') AS pc
          FROM entities
          WHERE kind = 'events');
    "#,
    // 18: partner-given points of live merged records (an organisation's address, an event's
    // venue) in an R*Tree with their kind, so distance search reads a box of it instead of every body. Triggers keep it
    // in step with `entities` in the same statement as the row (every writer, no code to forget);
    // the exact coordinates ride along (R*Tree bounds are 32-bit) for the great-circle check.
    // Events get the postcode index organisations have, for those placed by their centroid.
    r#"
    CREATE VIRTUAL TABLE entity_points USING rtree(id, min_lat, max_lat, min_lon, max_lon,
        +lat, +lon, +kind);
    CREATE VIEW entity_point_rows AS
        SELECT rowid AS id, lat, lon, kind FROM (
            SELECT rowid, kind, deleted_at,
                json_extract(body, CASE kind WHEN 'events' THEN '$.location.latitude'
                                             ELSE '$.address.latitude' END) AS lat,
                json_extract(body, CASE kind WHEN 'events' THEN '$.location.longitude'
                                             ELSE '$.address.longitude' END) AS lon
            FROM entities)
        WHERE deleted_at IS NULL
          AND typeof(lat) IN ('real', 'integer') AND typeof(lon) IN ('real', 'integer');
    CREATE TRIGGER entity_points_insert AFTER INSERT ON entities BEGIN
        INSERT INTO entity_points (id, min_lat, max_lat, min_lon, max_lon, lat, lon, kind)
            SELECT id, lat, lat, lon, lon, lat, lon, kind FROM entity_point_rows WHERE id = new.rowid;
    END;
    CREATE TRIGGER entity_points_update AFTER UPDATE OF body, deleted_at ON entities BEGIN
        DELETE FROM entity_points WHERE id = old.rowid;
        INSERT INTO entity_points (id, min_lat, max_lat, min_lon, max_lon, lat, lon, kind)
            SELECT id, lat, lat, lon, lon, lat, lon, kind FROM entity_point_rows WHERE id = new.rowid;
    END;
    CREATE TRIGGER entity_points_delete AFTER DELETE ON entities BEGIN
        DELETE FROM entity_points WHERE id = old.rowid;
    END;
    INSERT INTO entity_points (id, min_lat, max_lat, min_lon, max_lon, lat, lon, kind)
        SELECT id, lat, lat, lon, lon, lat, lon, kind FROM entity_point_rows;
    CREATE INDEX entities_event_postcode ON entities (json_extract(body, '$.location.postcode'))
        WHERE deleted_at IS NULL AND kind = 'events';
    "#,
    // 19: the change log by entity, so an entity's history (the admin console's entity page)
    // is a range read instead of a scan of every change.
    r#"
    CREATE INDEX changes_entity ON changes (entity_id, change_number);
    "#,
    // 20: every placed live record in one table of places, not only those with a partner-given
    // point: the rest at their postcode's centroid (`by_postcode`). Keyed by kind and grid cell
    // (0.05 degree squares: `places::cell`), so the box around a search's circle is one range
    // read per band of latitude, each row carrying what the search needs (exact point, name
    // order's key) — no probe per postcode or per row, and a name-ordered page reads only the
    // rows it shows. Replaces migration 18's partner-point R*Tree, whose extra columns cost a
    // random read per row found. Triggers place a record in the statement that writes it;
    // `places::load` places them again when the centroids change.
    r#"
    DROP TRIGGER entity_points_insert;
    DROP TRIGGER entity_points_update;
    DROP TRIGGER entity_points_delete;
    DROP VIEW entity_point_rows;
    DROP TABLE entity_points;
    CREATE TABLE entity_places (
        kind_code    INTEGER NOT NULL,
        cell         INTEGER NOT NULL,
        row          INTEGER NOT NULL,
        lat          REAL NOT NULL,
        lon          REAL NOT NULL,
        sort_key     TEXT NOT NULL,
        by_postcode  INTEGER NOT NULL,
        PRIMARY KEY (kind_code, cell, row)
    ) WITHOUT ROWID;
    CREATE INDEX entity_places_row ON entity_places (row);
    CREATE VIEW entity_place_rows AS
        SELECT CASE kind WHEN 'events' THEN 1 ELSE 0 END AS kind_code,
            CAST((lat + 90.0) / 0.05 AS INTEGER) * 8192
                + CAST((lon + 180.0) / 0.05 AS INTEGER) AS cell,
            id AS row, lat, lon, sort_key, by_postcode
        FROM (SELECT e.id, e.kind, e.sort_key, NOT e.given AS by_postcode,
                  CASE WHEN e.given THEN e.lat ELSE c.lat END AS lat,
                  CASE WHEN e.given THEN e.lon ELSE c.lon END AS lon
              FROM (SELECT rowid AS id, kind, sort_key, deleted_at, lat, lon, postcode,
                        typeof(lat) IN ('real', 'integer') AND typeof(lon) IN ('real', 'integer')
                            AND abs(lat) <= 90 AND abs(lon) <= 180 AS given
                    FROM (SELECT rowid, kind, sort_key, deleted_at,
                              json_extract(body, CASE kind WHEN 'events' THEN '$.location.latitude'
                                                           ELSE '$.address.latitude' END) AS lat,
                              json_extract(body, CASE kind WHEN 'events' THEN '$.location.longitude'
                                                           ELSE '$.address.longitude' END) AS lon,
                              json_extract(body, CASE kind WHEN 'events' THEN '$.location.postcode'
                                                           ELSE '$.address.postcode' END) AS postcode
                          FROM entities)) e
              LEFT JOIN postcode_centroids c ON NOT e.given AND c.postcode = e.postcode
              WHERE e.deleted_at IS NULL AND (e.given OR c.id IS NOT NULL));
    CREATE TRIGGER entity_places_insert AFTER INSERT ON entities BEGIN
        INSERT INTO entity_places SELECT * FROM entity_place_rows WHERE row = new.rowid;
    END;
    CREATE TRIGGER entity_places_update
        AFTER UPDATE OF body, deleted_at, sort_key, kind ON entities BEGIN
        DELETE FROM entity_places WHERE row = old.rowid;
        INSERT INTO entity_places SELECT * FROM entity_place_rows WHERE row = new.rowid;
    END;
    CREATE TRIGGER entity_places_delete AFTER DELETE ON entities BEGIN
        DELETE FROM entity_places WHERE row = old.rowid;
    END;
    INSERT INTO entity_places SELECT * FROM entity_place_rows;
    "#,
];

pub fn apply(conn: &mut Connection) -> rusqlite::Result<()> {
    let current: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    for (i, step) in STEPS.iter().enumerate() {
        let version = i as i64 + 1;
        if version <= current {
            continue;
        }
        let tx = conn.transaction()?;
        tx.execute_batch(step)?;
        tx.pragma_update(None, "user_version", version)?;
        tx.commit()?;
    }
    Ok(())
}

/// The schema version this build writes.
pub fn latest() -> i64 {
    STEPS.len() as i64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_links_survive_the_move_to_their_own_table() {
        let dir = tempfile::tempdir().unwrap();
        let mut conn = Connection::open(dir.path().join("old.db")).unwrap();
        // A store as the previous build left it: version 7, links on the records.
        for step in &STEPS[..7] {
            conn.execute_batch(step).unwrap();
        }
        conn.pragma_update(None, "user_version", 7).unwrap();
        conn.execute_batch(
            "INSERT INTO source_records (id, partner_id, feed_key, kind, source_id, content_hash,
                 payload, first_seen, last_seen, changed_at, deleted_at, entity_id)
             VALUES (1, 'p', 'f', 'events', 'a', 'h', '{}', 't', 't', 't', NULL, 'evt_1'),
                    (2, 'p', 'f', 'events', 'b', 'h', '{}', 't', 't', 't', 't', 'evt_1'),
                    (3, 'p', 'f', 'events', 'c', 'h', '{}', 't', 't', 't', NULL, NULL);",
        )
        .unwrap();

        apply(&mut conn).unwrap();

        let links: Vec<(i64, String)> = conn
            .prepare("SELECT row_id, entity_id FROM record_entities ORDER BY row_id")
            .unwrap()
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .map(Result::unwrap)
            .collect();
        assert_eq!(links, vec![(1, "evt_1".into()), (2, "evt_1".into())]);
        let column: i64 = conn
            .query_row(
                "SELECT COUNT(*) FROM pragma_table_info('source_records') WHERE name = 'entity_id'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(
            column, 0,
            "the old column is gone, so nothing reads a stale link"
        );
        let version: i64 = conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .unwrap();
        assert_eq!(version, latest());
    }
}
